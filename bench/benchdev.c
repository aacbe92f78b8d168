/*
 * benchdev.c: the dev agent, child processes and CPU readings shared by
 * bench_https and bench_kvclient (benchdev.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kb_common.h"
#include "benchdev.h"

int
bench_run_cmd(char *const argv[], const char *out, const char *err)
{
	int st, fd;
	pid_t p;

	if ((p = fork()) < 0)
		return -1;
	if (p == 0) {
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0)
			dup2(fd, 1);
		if ((fd = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0)
			dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(p, &st, 0) != p)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void
bench_show_file(const char *path)
{
	char *text = NULL;
	size_t len;

	if (kb_file_read(path, 64 * 1024, &text, &len) == 0) {
		fprintf(stderr, "%s", text);
		free(text);
	}
}

char *
bench_export_value(const char *text, const char *name)
{
	char pat[64], *v, *o;
	const char *p, *e;

	snprintf(pat, sizeof(pat), "export %s='", name);
	for (p = text; p != NULL; p = (p = strchr(p, '\n')) ? p + 1 : NULL)
		if (strncmp(p, pat, strlen(pat)) == 0)
			break;
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	if ((e = strchr(p, '\n')) == NULL)
		e = p + strlen(p);
	if (e == p || e[-1] != '\'' || (v = malloc((size_t)(e - p))) == NULL)
		return NULL;
	for (o = v; p < e - 1; p++) {
		if (strncmp(p, "'\\''", 4) == 0) {
			*o++ = '\'';
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return v;
}

/*
 * Sum over the threads alive now of /proc/PID/task/TID/schedstat's first
 * field (ns): utime and stime are sampled at clock ticks, this is exact.
 */
double
bench_pid_cpu_sched(pid_t pid)
{
	char path[64], buf[128];
	struct dirent *d;
	unsigned long long ns, sum = 0;
	DIR *dir;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)pid, d->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL && sscanf(buf, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(dir);
	return sum / 1e9;
}

double
bench_host_steal(void)
{
	unsigned long long v[8];
	char buf[512];
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	int n = 0;

	if (hz <= 0 || (f = fopen("/proc/stat", "r")) == NULL)
		return -1;
	/* cpu  user nice system idle iowait irq softirq steal ... */
	if (fgets(buf, sizeof(buf), f) != NULL)
		n = sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
		    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	return n == 8 ? (double)v[7] / (double)hz : -1;
}

double
bench_self_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void
bench_dev_free(struct bench_dev *d)
{
	free(d->url);
	free(d->ca_file);
	free(d->tok_file);
	free(d->socket);
	free(d->softhsm_conf);
	memset(d, 0, sizeof(*d));
}

int
bench_dev_up(const char *prog, const char *cli, const char *agent,
    const char *devdir, const char *tmpdir, struct bench_dev *d)
{
	char out[400], err[400], lock[400], comm[64] = "", path[64];
	char *argv[] = { (char *)cli, "dev", "up", "--dir", (char *)devdir,
	    "--https", NULL };
	char *text = NULL;
	size_t len;
	FILE *f;
	int rc;

	memset(d, 0, sizeof(*d));
	snprintf(out, sizeof(out), "%s/dev-up.out", tmpdir);
	snprintf(err, sizeof(err), "%s/dev-up.err", tmpdir);
	if (agent != NULL)
		setenv("KEYBRIDGED", agent, 1);
	if ((rc = bench_run_cmd(argv, out, err)) != 0) {
		fprintf(stderr, "%s: `keybridge dev up --https` exited with %d:\n",
		    prog, rc);
		bench_show_file(err);
		return -1;
	}
	if (kb_file_read(out, 64 * 1024, &text, &len) != 0) {
		fprintf(stderr, "%s: cannot read the output of dev up\n", prog);
		return -1;
	}
	d->url = bench_export_value(text, "KEYBRIDGE_URL");
	d->ca_file = bench_export_value(text, "KEYBRIDGE_CA");
	d->tok_file = bench_export_value(text, "KEYBRIDGE_TOKEN_FILE");
	d->socket = bench_export_value(text, "KEYBRIDGE_SOCKET");
	d->softhsm_conf = bench_export_value(text, "SOFTHSM2_CONF");
	free(text);
	if (d->url == NULL || d->ca_file == NULL || d->tok_file == NULL ||
	    d->socket == NULL || d->softhsm_conf == NULL) {
		fprintf(stderr, "%s: dev up printed no KEYBRIDGE_URL, KEYBRIDGE_CA, "
		    "KEYBRIDGE_TOKEN_FILE, KEYBRIDGE_SOCKET or SOFTHSM2_CONF\n", prog);
		bench_dev_free(d);
		return -1;
	}
	/* the agent holds DIR/agent.sock.lock, its pid inside */
	snprintf(lock, sizeof(lock), "%s/agent.sock.lock", devdir);
	if (kb_file_read(lock, 64, &text, &len) != 0) {
		fprintf(stderr, "%s: cannot read the agent's lock file\n", prog);
		bench_dev_free(d);
		return -1;
	}
	d->pid = (pid_t)atol(text);
	free(text);
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)d->pid);
	if ((f = fopen(path, "r")) != NULL) {
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		fclose(f);
	}
	if (d->pid <= 0 || strncmp(comm, "keybridged", 10) != 0) {
		fprintf(stderr, "%s: the pid in the agent's lock file is not a "
		    "running keybridged\n", prog);
		bench_dev_free(d);
		return -1;
	}
	return 0;
}

void
bench_dev_down(const char *cli, const char *devdir, const char *tmpdir,
    pid_t pid)
{
	char out[400], err[400];
	char *argv[] = { (char *)cli, "dev", "down", "--dir", (char *)devdir,
	    NULL };
	double t0;

	snprintf(out, sizeof(out), "%s/dev-down.out", tmpdir);
	snprintf(err, sizeof(err), "%s/dev-down.err", tmpdir);
	if (bench_run_cmd(argv, out, err) != 0) {
		/* not our child (dev up's): poll, then SIGKILL that one pid */
		kill(pid, SIGTERM);
		for (t0 = kb_now_mono(); kb_now_mono() - t0 < 10 && kill(pid, 0) == 0;)
			usleep(20000);
		if (kill(pid, 0) == 0)
			kill(pid, SIGKILL);
	}
}

bool
bench_common_opt(struct bench_common_opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	bool more = *i + 1 < argc;

	if (strcmp(a, "--cli") == 0 && more)
		o->cli = argv[++*i];
	else if (strcmp(a, "--agent") == 0 && more)
		o->agent = argv[++*i];
	else if (strcmp(a, "--node") == 0 && more)
		o->node = argv[++*i];
	else if (strcmp(a, "--sdk") == 0 && more)
		o->sdk = argv[++*i];
	else if (strcmp(a, "--no-sdk") == 0)
		o->no_sdk = true;
	else if (strcmp(a, "--dir") == 0 && more)
		o->dir = argv[++*i];
	else if (strcmp(a, "--url") == 0 && more)
		o->url = argv[++*i];
	else if (strcmp(a, "--ca") == 0 && more)
		o->ca = argv[++*i];
	else if (strcmp(a, "--token-file") == 0 && more)
		o->token_file = argv[++*i];
	else if (strcmp(a, "--pid") == 0 && more)
		o->pid = atol(argv[++*i]);
	else if (strcmp(a, "--tap") == 0)
		o->tap = true;
	else if (strcmp(a, "--strict") == 0)
		o->strict = true;
	else
		return false;
	return true;
}

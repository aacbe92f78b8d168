/*
 * benchdev.h: what bench_https and bench_kvclient share: a `keybridge dev
 * up --https` agent to measure, the child processes around it, and CPU
 * time from /proc.
 */
#ifndef KB_BENCHDEV_H
#define KB_BENCHDEV_H

#include <sys/types.h>

#include <stdbool.h>

/* The options both benchmarks take: the programs, the agent, the output. */
struct bench_common_opts {
	const char *cli, *agent, *node, *sdk, *dir;
	const char *url, *ca, *token_file;
	long pid;
	bool no_sdk, tap, strict;
};
/*
 * If argv[*i] is one of them (--cli, --agent, --node, --sdk, --no-sdk,
 * --dir, --url, --ca, --token-file, --pid, --tap, --strict), take it and
 * its value (*i advanced past it) and return true.
 */
bool bench_common_opt(struct bench_common_opts *o, int argc, char **argv,
    int *i);

/* Run argv with stdout and stderr to files; its exit code, or -1. */
int bench_run_cmd(char *const argv[], const char *out, const char *err);
/* A file (at most 64 KiB) on stderr. */
void bench_show_file(const char *path);
/* The value of an `export NAME='VALUE'` line (cli/dev.c's quoting), malloc'd. */
char *bench_export_value(const char *text, const char *name);

/* CPU seconds of pid from the scheduler's clock (all live threads), or -1. */
double bench_pid_cpu_sched(pid_t pid);
/* CPU seconds (user + system) of this process. */
double bench_self_cpu(void);
/* CPU seconds the hypervisor has taken from this machine's CPUs since
 * boot (/proc/stat's steal, all CPUs), or -1. */
double bench_host_steal(void);

/* What `keybridge dev up --https` printed, and the agent's pid. */
struct bench_dev {
	char *url;
	char *ca_file;
	char *tok_file;
	char *socket;
	char *softhsm_conf;
	pid_t pid;
};
/*
 * `cli dev up --dir devdir --https` (agent: $KEYBRIDGED, or NULL for the
 * CLI's default), its output kept in tmpdir.  0, or -1 after saying why
 * on stderr, prefixed with prog.
 */
int bench_dev_up(const char *prog, const char *cli, const char *agent,
    const char *devdir, const char *tmpdir, struct bench_dev *d);
/* `cli dev down --dir devdir`; failing that, SIGTERM then SIGKILL to pid. */
void bench_dev_down(const char *cli, const char *devdir, const char *tmpdir,
    pid_t pid);
void bench_dev_free(struct bench_dev *d);

#endif /* KB_BENCHDEV_H */

/*
 * access.c: who may do what.  The one place that decides: a peer's uid
 * and primary gid (SO_PEERCRED) map to a role per vault from the config
 * (docs/vaults.md); the agent's own uid is Administrator of every vault;
 * anyone else is denied until the config names them.
 */
#include <stdio.h>

#include "agent.h"
#include "store.h"

struct kb_store_actor
agent_peer_actor(const struct agent_peer *p, enum agent_role role)
{
	struct kb_store_actor who;

	who.uid = p->known && p->principal == NULL ? (uint32_t)p->uid :
	    UINT32_MAX;
	who.role = agent_role_name(role);
	who.principal = p->principal;
	return who;
}

const char *
agent_peer_name(const struct agent_peer *p, char *buf, size_t n)
{
	if (p->principal != NULL)
		snprintf(buf, n, "principal %s", p->principal);
	else if (p->known)
		snprintf(buf, n, "uid %u", (unsigned)p->uid);
	else
		snprintf(buf, n, "an unknown caller");
	return buf;
}

enum agent_role
agent_access_role(const struct agent *a, const struct agent_vault *v,
    const struct agent_peer *p)
{
	return agent_access_role_in(a, v->cfg->principals, v->cfg->n_principals,
	    p);
}

enum agent_role
agent_access_role_in(const struct agent *a, const struct agent_principal *list,
    size_t n, const struct agent_peer *p)
{
	enum agent_role best = ROLE_NONE;
	const struct agent_principal *pr;
	size_t i;

	if (!p->known)
		return ROLE_NONE;
	if (p->principal != NULL) {
		for (i = 0; i < n; i++) {
			pr = &list[i];
			if (pr->bearer && pr->id == p->bearer && pr->role > best)
				best = pr->role;
		}
		return best;
	}
	if (p->uid == a->uid)
		return ROLE_ADMINISTRATOR;
	for (i = 0; i < n; i++) {
		pr = &list[i];
		if (!pr->bearer &&
		    (pr->group ? (uint32_t)p->gid : (uint32_t)p->uid) == pr->id &&
		    pr->role > best)
			best = pr->role;
	}
	return best;
}

enum agent_role
agent_access_max_role(const struct agent *a, const struct agent_peer *p)
{
	enum agent_role best = ROLE_NONE, r;
	size_t i;

	if (p->known && p->principal == NULL && p->uid == a->uid)
		return ROLE_ADMINISTRATOR;
	for (i = 0; i < a->n_vaults; i++)
		if ((r = agent_access_role(a, &a->vaults[i], p)) > best)
			best = r;
	if ((r = agent_remotes_max_role(a, p)) > best)
		best = r;
	return best;
}

int
agent_access_check(const struct agent *a, const struct agent_peer *p)
{
	if (!p->known)
		return kb_error_set(KB_ERR_DENIED,
		    "the agent could not read the caller's credentials");
	if (agent_access_max_role(a, p) != ROLE_NONE)
		return 0;
	if (p->principal != NULL)
		return kb_error_set(KB_ERR_DENIED, "principal %s has no role on "
		    "any vault of this agent", p->principal);
	return kb_error_set(KB_ERR_DENIED,
	    "uid %u has no role on any vault of this agent",
	    (unsigned)p->uid);
}

/*
 * access.c: who may use the agent.  The one place that decides, so the
 * per-vault roles of a later issue replace this function and nothing
 * else.  For now: the agent's own uid and root.
 */
#include "agent.h"

int
agent_access_check(const struct agent *a, const struct agent_peer *p)
{
	if (!p->known)
		return kb_error_set(KB_ERR_DENIED,
		    "the agent could not read the caller's credentials");
	if (p->uid == a->uid || p->uid == 0)
		return 0;
	return kb_error_set(KB_ERR_DENIED,
	    "uid %u may not use this agent; only uid %u and root may",
	    (unsigned)p->uid, (unsigned)a->uid);
}

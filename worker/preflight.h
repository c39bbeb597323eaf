/* preflight.h: the worker's start-up check of the EspoCRM side (SPEC §6, §5.5): every sync
 * field exists with its type, optimistic concurrency is on, the phone type list is readable, and
 * whether the sync role may send direct messages. EspoCRM silently ignores attributes an entity
 * lacks (recorded 03), so a missing field would lose data without an error: until the check
 * passes the worker is not ready and takes no work.
 *
 * The checks are pure functions of EspoCRM's answers (GET /Metadata?key=entityDefs.CBeteiligte,
 * GET /App/user); preflight_run() asks EspoCRM and applies them. */
#ifndef VMH_PREFLIGHT_H
#define VMH_PREFLIGHT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "espo.h"

#define PREFLIGHT_MAX_PROBLEMS 24
#define PREFLIGHT_MAX_TYPES    12

struct preflight {
    size_t nproblems;
    char problems[PREFLIGHT_MAX_PROBLEMS][200]; /* one line per missing piece */
    size_t ntypes;
    char types[PREFLIGHT_MAX_TYPES][32]; /* the phone typeList, in EspoCRM's order */
    char default_type[32];               /* the phone defaultType */
    bool can_message;                    /* acl.messagePermission is "all" or "team" */
    char user_id[80];                    /* the sync user */
};

/* Checks entityDefs.CBeteiligte (the Metadata answer; NULL or JSON null: the entity is missing)
 * into p: problems appended, the phone type list filled. */
void preflight_check_defs(const json_t *defs, struct preflight *p);

/* Checks the App/user answer into p: the user id (a problem when missing) and can_message. */
void preflight_check_user(const json_t *app_user, struct preflight *p);

/* Asks EspoCRM (App/user, Metadata) and runs both checks. p is reset first. 0 when EspoCRM
 * answered both (p->nproblems says whether the set-up is right); -1 with err when it did not
 * (transport error, 401, 5xx): try again later. */
int preflight_run(struct espo *c, struct preflight *p, char *err, size_t errlen);

#endif

/* hooks.h: the three EspoCRM webhooks of vmh-sync (SPEC §3.1, §11, §13), decided purely: the URL
 * each must point at (<public URL> WEBHOOK_PATH_PREFIX <event>, producer/webhook.h), which of
 * EspoCRM's registered webhooks (GET /api/v1/Webhook, recorded 07_webhooks) are ours, which are
 * missing or inactive, and the WEBHOOK_SECRETS value (id:secretKey,...) their secret keys make.
 * vmhctl webhooks register and vmhctl doctor act on the result. Nothing here allocates. */
#ifndef VMH_HOOKS_H
#define VMH_HOOKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define HOOKS_N 3 /* create, update, delete */

struct hooks_one {
    char event[40]; /* "CBeteiligte.create" */
    char url[512];  /* where it must point */
    bool found;     /* a webhook of this event points at url */
    bool active;    /* ... and is active */
    char id[64];    /* its id and secret key (when found) */
    char secret[128];
    size_t elsewhere;    /* webhooks of this event pointing at another URL */
    char other_url[512]; /* the first of them */
};

struct hooks {
    struct hooks_one ev[HOOKS_N];
};

/* The three events and their URLs for the producer's public base URL (a trailing '/' is
 * ignored). 0, or -1 when base is empty or the URL does not fit. */
int hooks_init(struct hooks *h, const char *base);

/* Marks which webhooks of list (the "list" array of GET /api/v1/Webhook) are ours: the first
 * active one of each event at its URL, else the first inactive one. */
void hooks_match(struct hooks *h, const json_t *list);

/* Takes the answer of a registration (POST 201) or reactivation (PUT 200) of event i. 0, or -1
 * when it lacks an id or secretKey. */
int hooks_take(struct hooks *h, size_t i, const json_t *answer);

/* WEBHOOK_SECRETS: "id1:secret1,id2:secret2,id3:secret3" of the found webhooks. 0, or -1 when one
 * is missing or buf is too small. */
int hooks_secrets(const struct hooks *h, char *buf, size_t len);

#endif

/* ctl.h: vmhctl's shared context (SPEC §11): the configuration of the other binaries (the rows
 * of cfg_vars.c marked for vmhctl), the clients of EspoCRM, Redis and Advoware made on first
 * use, and how answers leave: text for a person on stdout, or one JSON document with --json.
 * Exit codes: CTL_OK, CTL_PROBLEM (found a problem), CTL_USAGE (usage or configuration).
 *
 * A struct ctl owns its clients; ctl_free() releases them. The getters return NULL only when a
 * client cannot be made (out of memory, a bad REDIS_URL or ADVOWARE_API_KEY), with err set. */
#ifndef VMH_CTL_H
#define VMH_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "advo.h"
#include "cfg.h"
#include "espo.h"
#include "redis.h"

enum { CTL_OK = 0, CTL_PROBLEM = 1, CTL_USAGE = 2 };

struct ctl {
    struct cfg *cfg;     /* owned */
    bool json;           /* --json: one JSON document on stdout */
    FILE *out;           /* stdout */
    const char *prefix;  /* KAFKA_TOPIC_PREFIX */
    const char *brokers; /* KAFKA_BROKERS */
    struct espo *espo;
    struct redis_client *redis;
    struct advo *advo;
};

/* Takes cfg. NULL when out of memory. */
struct ctl *ctl_new(struct cfg *cfg, bool json, FILE *out);
void ctl_free(struct ctl *c);

struct espo *ctl_espo(struct ctl *c, char *err, size_t errlen);
struct redis_client *ctl_redis(struct ctl *c, char *err, size_t errlen);
/* The Advoware client on ctl_redis (its token is the workers' shared one, SPEC §4.5). */
struct advo *ctl_advo(struct ctl *c, char *err, size_t errlen);

/* Text output for a person (nothing with --json). printf-style. */
void ctl_say(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* --json: prints doc as one line. Takes doc (NULL is ignored). */
void ctl_emit(struct ctl *c, json_t *doc);

/* A JSON string, or JSON null for NULL. New reference. */
json_t *ctl_jstr(const char *s);

#endif

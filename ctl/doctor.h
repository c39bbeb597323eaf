/* doctor.h: the verdicts of vmhctl doctor (SPEC §11), pure functions of what the checks found:
 * one line per dependency, OK, FAIL (with what to do) or UNKNOWN (could not tell; not counted
 * as a failure). cmd_doctor.c asks Kafka, Redis, EspoCRM and Advoware and fills the inputs.
 * Nothing here allocates except doctor_json (a new reference). */
#ifndef VMH_DOCTOR_H
#define VMH_DOCTOR_H

#include <jansson.h>
#include <stdio.h>

#include "hooks.h"
#include "kafka.h"
#include "preflight.h"
#include "redis.h"

enum doctor_verdict { DOCTOR_OK, DOCTOR_FAIL, DOCTOR_UNKNOWN };

struct doctor_line {
    char check[32];
    enum doctor_verdict v;
    char detail[512];
    char fix[512]; /* what to do (FAIL, UNKNOWN) */
};

/* The five topics of prefix, by their partition counts (0: missing): all present, all equal. */
void doctor_topics(struct doctor_line *l, const char *prefix, const int counts[KAFKA_TOPIC_COUNT]);
/* Redis persistence: AOF or RDB on is OK, both off FAIL, otherwise UNKNOWN. */
void doctor_persistence(struct doctor_line *l, enum redis_persist aof, enum redis_persist rdb);
/* The EspoCRM set-up check (worker/preflight): fields, OCC, phone types. */
void doctor_setup(struct doctor_line *l, const struct preflight *pf);
/* The sync role's Message permission (SPEC §5.5). */
void doctor_message(struct doctor_line *l, const struct preflight *pf);
/* The three webhooks (h matched against EspoCRM's list). */
void doctor_webhooks(struct doctor_line *l, const struct hooks *h);

/* Sets a line. fix may be NULL. */
void doctor_set(struct doctor_line *l, const char *check, enum doctor_verdict v, const char *fix,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Text: "OK    check  detail" (and "      → fix" under a failure). */
void doctor_print(FILE *out, const struct doctor_line *l);
/* {"check","ok":true|false|null,"detail","fix"}. */
json_t *doctor_json(const struct doctor_line *l);

#endif

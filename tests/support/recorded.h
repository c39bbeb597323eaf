/* recorded.h: the recorded answers of a real EspoCRM 9.1.5 as tests read them, from the in-repo
 * copy tests/contract/espocrm-9.1.5/ (one copy of each recorded fact: tests never spell a
 * recorded body, signature or secretKey again). A whole case, the response body of one step,
 * the webhook deliveries with the secret of the webhook that sent each.
 *
 * Every function fails the running cmocka test (fail_msg) when the recording cannot be read or
 * does not hold what is asked for; none returns NULL. */
#ifndef VMH_TEST_RECORDED_H
#define VMH_TEST_RECORDED_H

#include <stddef.h>

#include <jansson.h>

/* Where the recordings are; file names below are relative to it ("07_webhooks.json"). */
#define REC_DIR VMH_SOURCE_DIR "/tests/contract/espocrm-9.1.5/"

/* The recorded case `file`, parsed. New reference: the caller json_decrefs it. */
json_t *rec_case(const char *file);

/* The response body of step `step` of case `file`. New reference: the caller json_decrefs it. */
json_t *rec_response_body(const char *file, size_t step);

/* One webhook delivery of a case ("deliveries"), as the receiver got it. Every string is
 * borrowed from the case it was read from and lives as long as that case. */
struct rec_delivery {
    const char *path;       /* "/hook/update" */
    const char *webhook_id; /* webhooks.<name>.id of the webhook whose url has this path */
    const char *secret_key; /* that webhook's secretKey (a throwaway test value) */
    const char *body; /* body_raw, byte for byte (its length checked against Content-Length) */
    size_t len;
    const char *signature;   /* headers.Signature */
    const char *x_signature; /* headers.X-Signature */
};

/* The delivery to `path` of case c. */
struct rec_delivery rec_delivery(json_t *c, const char *path);

/* Every delivery of case c in recorded order into out[0..max-1]; returns how many (at least 1,
 * at most max: more is a test failure, never a silent cut). */
size_t rec_deliveries(json_t *c, struct rec_delivery *out, size_t max);

#endif

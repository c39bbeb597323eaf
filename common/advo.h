/* advo.h: the Advoware REST client (SPEC §4.5, §7.2): the HMAC-SHA512 token protocol, the
 * bearer token shared by every worker through Redis (one fetcher at a time), 401 → a fresh
 * token and one repeat, the global ADVOWARE_MAX_RPS token bucket (one Lua script), Beteiligte
 * and Kommunikationen calls, and the Rechtsformen list cached for an hour. Blocking, on httpc:
 * one client per thread (it borrows that thread's Redis client). Every call is counted (apistat,
 * system "advoware"). Tokens, keys and passwords never reach a log line or an error text.
 *
 * Contract of every call (as espo.h): 0 when Advoware answered (any status in *status; JSON in
 * *out, a new reference, NULL if the body was not JSON), -1 on a transport, token or Redis error
 * with err set (*status 0). */
#ifndef VMH_ADVO_H
#define VMH_ADVO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "apistat.h"
#include "redis.h"

struct advo_conf {
    const char *base_url;  /* ADVOWARE_URL (no /api/v1) */
    const char *token_url; /* ADVOWARE_TOKEN_URL; NULL or "" = base_url */
    const char *app_id, *api_key_b64, *kanzlei, *database, *user, *password;
    int product, role; /* 64, 2 */
    long timeout_ms;
    double max_rps; /* 0 = unlimited */
};

struct cfg;
/* The ADVOWARE_* variables and HTTP_TIMEOUT_MS of a loaded configuration (pointing into it). */
struct advo_conf advo_conf_from_cfg(const struct cfg *cfg);

struct advo;

/* Copies conf's strings. redis: the calling thread's client (kept, not owned). st may be NULL.
 * NULL with err on out of memory. */
struct advo *advo_new(const struct advo_conf *conf, struct redis_client *redis,
                      const struct apistat *st, char *err, size_t errlen);
void advo_free(struct advo *a);

int advo_get_beteiligte(struct advo *a, long long betnr, long *status, json_t **out, char *err,
                        size_t errlen);
/* The created record in *out (an object; Advoware may answer an array of one, SPEC §5.3). On a
 * transport error *maybe_created says whether the request left this host, so that Advoware may
 * have created the record although no answer came (a timeout, a reset): never POST again then.
 * false after a refusal (nothing was sent). */
int advo_post_beteiligte(struct advo *a, const json_t *body, long *status, json_t **out,
                         bool *maybe_created, char *err, size_t errlen);
/* Advoware answers an array of one object; *out is that object. */
int advo_put_beteiligte(struct advo *a, long long betnr, const json_t *body, long *status,
                        json_t **out, char *err, size_t errlen);
int advo_post_kommunikation(struct advo *a, long long betnr, const json_t *body, long *status,
                            json_t **out, char *err, size_t errlen);
int advo_put_kommunikation(struct advo *a, long long betnr, long long kommid, const json_t *body,
                           long *status, json_t **out, char *err, size_t errlen);

/* Whether value is in Advoware's Rechtsformen (fetched at most once an hour per process, shared
 * by all clients; thread-safe). 1 yes, 0 no, -1 with err when the list could not be fetched.
 * NULL or "" → 1 (nothing to check). */
int advo_rechtsform_allowed(struct advo *a, const char *value, char *err, size_t errlen);
/* Drops the process's cached list (tests that change Advoware's list; and at exit, so that
 * memory checkers see nothing left). */
void advo_rechtsformen_forget(void);

/* Whether the last call failed because Advoware refused the credentials (SPEC §5.3): the token
 * request answered 400/401/403, or the call answered 401 again with a fresh token. Not the
 * party's fault: the caller stops taking work instead of marking it. */
bool advo_credentials_refused(const struct advo *a);
/* API calls this client made so far (token requests included). */
unsigned long advo_calls(const struct advo *a);

/* Asks Advoware for a fresh token with the configured credentials (vmhctl doctor), whatever
 * the shared cache holds; a token it gets becomes the shared one, as a worker's would. 0, or -1
 * with err ("advoware token: answered 401", or the transport error). */
int advo_token_check(struct advo *a, char *err, size_t errlen);

/* The token request of SPEC §7.2 for nonce and timestamp (pure; for tests). New reference, or
 * NULL with err when the API key is not base64. */
json_t *advo_token_request(const struct advo_conf *conf, const char *nonce, const char *timestamp,
                           char *err, size_t errlen);

#endif

/* status.h: what a run writes into EspoCRM's status fields (SPEC §5.6, §6), a pure function of
 * the run's outcome, the entity's retry count and the time. */
#ifndef VMH_STATUS_H
#define VMH_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum outcome {
    OUT_SUCCESS,             /* clean */
    OUT_TRANSIENT,           /* network error, timeout, 5xx, 429: retry with backoff */
    OUT_PERMANENT,           /* Advoware 400 or a validation error: no pointless retries */
    OUT_DELETED_IN_ADVOWARE, /* Advoware 404 */
    OUT_UNCERTAIN,           /* a create whose outcome is unknown: a person decides (§5.3) */
};

/* The syncErrorMessage of an uncertain create (SPEC §5.3). */
#define STATUS_UNCERTAIN_TEXT                                                                      \
    "Anlage in Advoware ungewiss: bitte prüfen, ob der Beteiligte angelegt wurde (vmhctl link / " \
    "vmhctl create)"

#define STATUS_MAX_TRANSIENT 5 /* the 5th transient failure is permanent (auto reset in 24 h) */
#define STATUS_AUTO_RESET_S  (24 * 3600)

struct status_result {
    json_t *attrs;  /* the status fields to put (new reference) */
    bool notify;    /* one notification goes with it */
    char text[512]; /* its text (German, for the firm's users) */
};

/* retry_count: the entity's syncRetryCount before this run; message: what went wrong (on
 * success: NULL, or what was not taken over, kept as syncErrorMessage; OUT_UNCERTAIN: the time
 * of the POST); betnr: for texts (0 =
 * none); now: Unix seconds. Returns 0, -1 on out of memory. */
int status_for(enum outcome o, long long retry_count, const char *message, long long betnr,
               long long now, struct status_result *out);

/* Backoff holds (SPEC §3.1): a party in `failed` whose next retry (next_retry, Unix seconds; <= 0
 * = none) lies after now waits for it; only a scheduled run (the cron's retry scan, vmhctl)
 * retries it early. A person's edit turns the status to dirty, so it never waits. */
bool status_backoff_holds(const char *sync_status, long long next_retry, long long now,
                          bool scheduled);

/* Whether the run starts the retry count over (SPEC §5.6): the cron's auto reset, or a person
 * edited the party (dirty) since the last failure. */
bool status_retry_restarts(const char *sync_status, bool auto_reset);

/* Backoff of the n-th consecutive transient failure (n >= 1), in seconds: by default 1, 5, 15,
 * 60, 240 minutes (the last value for any later n). */
long long status_backoff_s(long long n);

/* Replaces the backoff table (SYNC_RETRY_BACKOFF; tests and chaos runs use seconds): n >= 1
 * waits in ms, rounded up to whole seconds. Process-wide: call once at start, before threads.
 * 0, or -1 (table unchanged) when n is 0 or over STATUS_BACKOFF_MAX. */
#define STATUS_BACKOFF_MAX 16
int status_set_backoff(const long long *ms, size_t n);

#endif

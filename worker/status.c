/* status.c: the status policy (SPEC §5.6). */
#include "status.h"

#include "syncfields.h"
#include "synctime.h"

#include <stdio.h>
#include <string.h>

/* The backoff table in seconds (SPEC §5.6 by default); set once at start. */
static long long backoff_s[STATUS_BACKOFF_MAX] = {60, 300, 900, 3600, 14400};
static size_t backoff_n = 5;

long long status_backoff_s(long long n)
{
    size_t i = n < 1 ? 0 : (size_t)n > backoff_n ? backoff_n - 1 : (size_t)n - 1;
    return backoff_s[i];
}

int status_set_backoff(const long long *ms, size_t n)
{
    if (n == 0 || n > STATUS_BACKOFF_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        backoff_s[i] = ms[i] <= 0 ? 1 : (ms[i] + 999) / 1000;
    backoff_n = n;
    return 0;
}

static json_t *datetime(long long t)
{
    char buf[ST_DATETIME_LEN];
    st_format_espo(t, buf, sizeof buf);
    return json_string(buf);
}

int status_for(enum outcome o, long long retry_count, const char *message, long long betnr,
               long long now, struct status_result *out)
{
    memset(out, 0, sizeof *out);
    json_t *a = json_object();
    if (!a)
        return -1;
    const char *msg = message && *message ? message : "unbekannter Fehler";
    long long n = retry_count < 0 ? 1 : retry_count + 1;
    switch (o) {
    case OUT_SUCCESS:
        json_object_set_new(a, SF_SYNC_STATUS, json_string(SF_STATUS_CLEAN));
        json_object_set_new(a, SF_SYNC_RETRY_COUNT, json_integer(0));
        json_object_set_new(a, SF_SYNC_NEXT_RETRY, json_null());
        /* A success may still name what was not taken over (SPEC §5.4: skipped entries). */
        json_object_set_new(a, SF_SYNC_ERROR_MESSAGE,
                            message && *message ? json_string(message) : json_null());
        json_object_set_new(a, SF_SYNC_AUTO_RESET_AT, json_null());
        json_object_set_new(a, SF_ADVOWARE_LAST_SYNC, datetime(now));
        break;
    case OUT_TRANSIENT:
        json_object_set_new(a, SF_SYNC_RETRY_COUNT, json_integer(n));
        json_object_set_new(a, SF_SYNC_ERROR_MESSAGE, json_string(msg));
        if (n < STATUS_MAX_TRANSIENT) {
            json_object_set_new(a, SF_SYNC_STATUS, json_string(SF_STATUS_FAILED));
            json_object_set_new(a, SF_SYNC_NEXT_RETRY, datetime(now + status_backoff_s(n)));
            break;
        }
        json_object_set_new(a, SF_SYNC_STATUS, json_string(SF_STATUS_PERMANENTLY_FAILED));
        json_object_set_new(a, SF_SYNC_NEXT_RETRY, json_null());
        json_object_set_new(a, SF_SYNC_AUTO_RESET_AT, datetime(now + STATUS_AUTO_RESET_S));
        out->notify = true;
        snprintf(out->text, sizeof out->text,
                 "Synchronisation mit Advoware %lld-mal fehlgeschlagen, automatischer Neuversuch "
                 "in 24 Stunden: %s",
                 n, msg);
        break;
    case OUT_PERMANENT:
        /* no retry count: nothing is retried until a person changes the data */
        json_object_set_new(a, SF_SYNC_STATUS, json_string(SF_STATUS_PERMANENTLY_FAILED));
        json_object_set_new(a, SF_SYNC_NEXT_RETRY, json_null());
        json_object_set_new(a, SF_SYNC_AUTO_RESET_AT, json_null());
        json_object_set_new(a, SF_SYNC_ERROR_MESSAGE, json_string(msg));
        out->notify = true;
        snprintf(out->text, sizeof out->text,
                 "Synchronisation mit Advoware nicht möglich, bitte Daten korrigieren: %s", msg);
        break;
    case OUT_UNCERTAIN:
        /* failed, but not retried by the clock: the mark stands until a person resolves it
         * (vmhctl link/create send the resync). Looked at again once a day, not on every tick
         * of the cron's retry scan (which takes a failed party without syncNextRetry). */
        json_object_set_new(a, SF_SYNC_STATUS, json_string(SF_STATUS_FAILED));
        json_object_set_new(a, SF_SYNC_NEXT_RETRY, datetime(now + STATUS_AUTO_RESET_S));
        json_object_set_new(a, SF_SYNC_ERROR_MESSAGE, json_string(STATUS_UNCERTAIN_TEXT));
        out->notify = true;
        snprintf(out->text, sizeof out->text, "%s; Anlage versucht am %s (UTC)",
                 STATUS_UNCERTAIN_TEXT, msg);
        break;
    case OUT_DELETED_IN_ADVOWARE:
        json_object_set_new(a, SF_SYNC_STATUS, json_string(SF_STATUS_DELETED_IN_ADVOWARE));
        json_object_set_new(a, SF_SYNC_NEXT_RETRY, json_null());
        json_object_set_new(a, SF_SYNC_ERROR_MESSAGE,
                            json_string("Beteiligter in Advoware nicht gefunden (404)"));
        out->notify = true;
        snprintf(out->text, sizeof out->text,
                 "Beteiligter wurde in Advoware gelöscht (betNr %lld). Bitte prüfen, ob er in "
                 "EspoCRM noch gebraucht wird.",
                 betnr);
        break;
    }
    out->attrs = a;
    return 0;
}

bool status_backoff_holds(const char *sync_status, long long next_retry, long long now,
                          bool scheduled)
{
    return !scheduled && syncfields_status_is(sync_status, SF_STATUS_FAILED) && next_retry > now;
}

bool status_retry_restarts(const char *sync_status, bool auto_reset)
{
    return auto_reset || syncfields_status_is(sync_status, SF_STATUS_DIRTY);
}

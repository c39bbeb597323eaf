/* synctime.h: the one owner of the time formats (SPEC §2, §5.1, §5.2, §7.1), pure functions
 * writing into caller buffers; the worker, the cron's where clauses, the Kafka message, the log
 * and the Advoware token request all format their times here.
 *
 * EspoCRM: datetimes "YYYY-MM-DD HH:MM:SS" in UTC, dates "YYYY-MM-DD". Advoware: zone-less
 * "YYYY-MM-DDTHH:MM:SS[.fff]" in local time of ADVOWARE_TZ; st_parse_advo() reads them in the
 * process's time zone, so the worker sets TZ=ADVOWARE_TZ once at start (st_set_zone). Timestamps
 * of our own (emittedAt, log lines, the token request): ISO-8601 UTC with milliseconds,
 * "YYYY-MM-DDTHH:MM:SS.mmmZ". Times are Unix seconds unless named _ms. */
#ifndef VMH_SYNCTIME_H
#define VMH_SYNCTIME_H

#include <stdbool.h>
#include <stddef.h>

#define ST_DATETIME_LEN 20 /* "YYYY-MM-DD HH:MM:SS" + NUL */
#define ST_UTC_MS_LEN   25 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL */

/* Sets the process time zone (TZ + tzset) for st_parse_advo. Call once at start. */
void st_set_zone(const char *tz);

/* Whether tz (ADVOWARE_TZ) names a zone of the system's time zone database ($TZDIR, else
 * /usr/share/zoneinfo: a TZif file). glibc silently reads an unknown zone as UTC, so an
 * operator's typo would shift every Advoware time. */
bool st_zone_known(const char *tz);

/* EspoCRM datetime → Unix seconds. 0, or -1 if malformed or not a real date/time. */
int st_parse_espo(const char *s, long long *out);
/* Unix seconds → EspoCRM datetime into buf (>= ST_DATETIME_LEN). */
void st_format_espo(long long t, char *buf, size_t buflen);
/* Unix ms → "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into buf (>= ST_UTC_MS_LEN; a smaller buf
 * truncates). */
void st_format_utc_ms(long long ms, char *buf, size_t buflen);
/* Advoware local datetime (fraction ignored) → Unix seconds. 0 or -1. */
int st_parse_advo(const char *s, long long *out);

/* "YYYY-MM-DD" (a real calendar date) → "YYYY-MM-DDT00:00:00". 0, or -1 if not a date. */
int st_date_to_advo(const char *date, char *buf, size_t buflen);
/* Advoware "YYYY-MM-DDTHH:MM:SS..." → "YYYY-MM-DD". 0 or -1. */
int st_date_from_advo(const char *s, char *buf, size_t buflen);

#endif

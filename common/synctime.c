/* synctime.c: the time formats of EspoCRM, Advoware and our own timestamps (see synctime.h). */
#include "synctime.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void st_set_zone(const char *tz)
{
    if (tz && *tz)
        setenv("TZ", tz, 1);
    tzset();
}

bool st_zone_known(const char *tz)
{
    char path[512], magic[4];
    const char *dir = getenv("TZDIR");
    if (!tz || !*tz || *tz == '/' || strstr(tz, "..") || strlen(tz) > 200)
        return false;
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    bool ok = fread(magic, 1, sizeof magic, f) == sizeof magic && memcmp(magic, "TZif", 4) == 0;
    fclose(f);
    return ok;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid_date(int y, int m, int d)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= days[m - 1] + (m == 2 && leap(y));
}

/* Parses "YYYY-MM-DD<sep>HH:MM:SS" exactly (sep ' ' or 'T'); *rest points behind it. */
static int parse_datetime(const char *s, char sep, struct tm *tm, const char **rest)
{
    int y, mo, d, h, mi, se, n = 0;
    char c;
    if (!s || strlen(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != sep || s[13] != ':' ||
        s[16] != ':')
        return -1;
    if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &c, &h, &mi, &se, &n) != 7 ||
        n != 19 || !valid_date(y, mo, d) || h > 23 || mi > 59 || se > 59 || h < 0 || mi < 0 ||
        se < 0)
        return -1;
    for (int i = 0; i < 19; i++) {
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    *tm = (struct tm){.tm_year = y - 1900,
                      .tm_mon = mo - 1,
                      .tm_mday = d,
                      .tm_hour = h,
                      .tm_min = mi,
                      .tm_sec = se,
                      .tm_isdst = -1};
    *rest = s + 19;
    return 0;
}

int st_parse_espo(const char *s, long long *out)
{
    struct tm tm;
    const char *rest;
    if (parse_datetime(s, ' ', &tm, &rest) != 0 || *rest)
        return -1;
    *out = (long long)timegm(&tm);
    return 0;
}

void st_format_espo(long long t, char *buf, size_t buflen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, buflen, "%Y-%m-%d %H:%M:%S", &tm);
}

void st_format_utc_ms(long long ms, char *buf, size_t buflen)
{
    time_t tt = (time_t)(ms / 1000);
    struct tm tm;
    if (!buf || buflen == 0)
        return;
    gmtime_r(&tt, &tm);
    size_t n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, buflen - n, ".%03lldZ", ms % 1000);
}

int st_parse_advo(const char *s, long long *out)
{
    struct tm tm;
    const char *rest;
    if (parse_datetime(s, 'T', &tm, &rest) != 0)
        return -1;
    if (*rest == '.') { /* fraction of a second */
        rest++;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    if (*rest)
        return -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return -1;
    *out = (long long)t;
    return 0;
}

int st_date_to_advo(const char *date, char *buf, size_t buflen)
{
    int y, m, d, n = 0;
    if (!date || strlen(date) != 10 || date[4] != '-' || date[7] != '-' ||
        sscanf(date, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 || !valid_date(y, m, d))
        return -1;
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (date[i] < '0' || date[i] > '9'))
            return -1;
    }
    if (snprintf(buf, buflen, "%.10sT00:00:00", date) >= (int)buflen)
        return -1;
    return 0;
}

int st_date_from_advo(const char *s, char *buf, size_t buflen)
{
    struct tm tm;
    const char *rest;
    if (parse_datetime(s, 'T', &tm, &rest) != 0 || buflen < 11)
        return -1;
    snprintf(buf, buflen, "%.10s", s);
    return 0;
}

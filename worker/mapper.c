/* mapper.c: Stammdaten mapping and validation (SPEC §5.1). */
#include "mapper.h"

#include "synctime.h"

#include <stdio.h>
#include <string.h>

const struct map_field map_fields[MAP_NFIELDS] = {
    {"name", "name", 140},     {"vorname", "vorname", 30},         {"rechtsform", "rechtsform", 50},
    {"titel", "titel", 50},    {"anrede", "anrede", 35},           {"bAnrede", "bAnrede", 150},
    {"zusatz", "zusatz", 100}, {"dateOfBirth", "geburtsdatum", 0},
};

size_t map_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* The string value of key, or NULL when missing, null, not a string or empty. */
static const char *text(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : NULL;
}

json_t *map_to_advo(const json_t *entity)
{
    json_t *out = json_object();
    for (size_t i = 0; i < MAP_NFIELDS; i++) {
        const struct map_field *f = &map_fields[i];
        const char *v = text(entity, f->espo);
        json_t *val = json_null();
        if (v && f->maxlen == 0) {
            char date[32];
            if (st_date_to_advo(v, date, sizeof date) != 0) {
                json_decref(out);
                return NULL;
            }
            val = json_string(date);
        } else if (v) {
            val = json_string(v);
        }
        json_object_set_new(out, f->advo, val);
    }
    return out;
}

json_t *map_to_espo(const json_t *advo)
{
    json_t *out = json_object();
    for (size_t i = 0; i < MAP_NFIELDS; i++) {
        const struct map_field *f = &map_fields[i];
        const char *v = text(advo, f->advo);
        char date[16];
        if (v && f->maxlen == 0)
            v = st_date_from_advo(v, date, sizeof date) == 0 ? date : NULL;
        if (!v && strcmp(f->espo, "name") == 0)
            continue; /* required in EspoCRM: never cleared */
        json_object_set_new(out, f->espo, v ? json_string(v) : json_null());
    }
    return out;
}

bool map_equal(const json_t *entity, const json_t *advo)
{
    json_t *want = map_to_advo(entity);
    bool eq = want != NULL;
    for (size_t i = 0; eq && i < MAP_NFIELDS; i++) {
        const struct map_field *f = &map_fields[i];
        const char *a = json_string_value(json_object_get(want, f->advo));
        const char *b = text(advo, f->advo);
        char day[16], date[32];
        if (b && f->maxlen == 0 && st_date_from_advo(b, day, sizeof day) == 0 &&
            st_date_to_advo(day, date, sizeof date) == 0)
            b = date; /* Advoware may answer with a fraction of a second */
        eq = (!a && !b) || (a && b && strcmp(a, b) == 0);
    }
    json_decref(want);
    return eq;
}

int map_validate(const json_t *entity, char *msg, size_t msglen)
{
    for (size_t i = 0; i < MAP_NFIELDS; i++) {
        const struct map_field *f = &map_fields[i];
        json_t *j = json_object_get(entity, f->espo);
        const char *v = json_string_value(j);
        if (j && !json_is_null(j) && !json_is_string(j)) {
            snprintf(msg, msglen, "%s: not a text", f->espo);
            return -1;
        }
        if (!v || !*v) {
            if (strcmp(f->espo, "name") == 0) {
                snprintf(msg, msglen, "name: required");
                return -1;
            }
            continue;
        }
        if (f->maxlen == 0) {
            char date[32];
            if (st_date_to_advo(v, date, sizeof date) != 0) {
                snprintf(msg, msglen, "%s: not a date (YYYY-MM-DD)", f->espo);
                return -1;
            }
        } else if (map_utf8_len(v) > (size_t)f->maxlen) {
            snprintf(msg, msglen, "%s: longer than %d characters", f->espo, f->maxlen);
            return -1;
        }
    }
    return 0;
}

/* mapper.h: the 8 Stammdaten fields between EspoCRM and Advoware (SPEC §5.1), pure functions on
 * jansson objects. Never sends the Advoware fields its PUT ignores. */
#ifndef VMH_MAPPER_H
#define VMH_MAPPER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct map_field {
    const char *espo; /* CBeteiligte attribute */
    const char *advo; /* Beteiligte field */
    int maxlen;       /* characters (UTF-8 code points); 0 = a date */
};
#define MAP_NFIELDS 8
extern const struct map_field map_fields[MAP_NFIELDS];

/* EspoCRM entity → Advoware body: all 8 fields, empty or missing = null, dateOfBirth
 * "YYYY-MM-DD" → geburtsdatum "YYYY-MM-DDT00:00:00". New reference; NULL on a date that is not
 * one (validate first). */
json_t *map_to_advo(const json_t *entity);

/* Advoware record → EspoCRM attributes of the 8 fields: a null (or missing) clears the field,
 * except name (required in EspoCRM: never cleared); geburtsdatum → dateOfBirth. New reference. */
json_t *map_to_espo(const json_t *advo);

/* True if the 8 fields hold the same values on both sides (as map_to_advo would send them). */
bool map_equal(const json_t *entity, const json_t *advo);

/* Validation before any write to Advoware (SPEC §5.1), without the rechtsform list (the caller
 * checks that against Advoware's list): name present, lengths, the date. 0, or -1 with msg
 * naming field and rule ("vorname: longer than 30 characters"). */
int map_validate(const json_t *entity, char *msg, size_t msglen);

/* Number of UTF-8 code points of s (bytes 10xxxxxx are continuations). */
size_t map_utf8_len(const char *s);

#endif

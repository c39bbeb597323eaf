/* marker.h: the marker codec of SPEC §5.4, pure functions. Advoware's `bemerkung` of a synced
 * Kommunikation entry starts with
 *
 *     [ESPOCRM:<base64 of the value, UTF-8, standard alphabet, padded>:<kommKz>]
 *
 * or, for an emptied entry kept for reuse, [ESPOCRM-SLOT:<kommKz>], optionally followed by one
 * space and the user's own text. The marker holds the value at the last sync (the baseline)
 * and the entry's true kommKz (Advoware's GET says 0).
 *
 * Parsing is lenient where people type and strict where we write: the first well-formed marker
 * anywhere in the text counts, and everything around it is the user's text, kept byte for
 * byte (only the one space that separated it from the marker goes). A malformed marker (bad
 * base64, a value that is not UTF-8 or is empty, kommKz not 1..12) is no marker: its text stays
 * user text. Base64 keeps values with ':' or ']' inside from breaking the syntax. */
#ifndef VMH_MARKER_H
#define VMH_MARKER_H

#include <stddef.h>

enum marker_kind { MARKER_NONE, MARKER_VALUE, MARKER_SLOT };

struct marker {
    enum marker_kind kind;
    int kz;      /* 1..12 (MARKER_VALUE, MARKER_SLOT) */
    char *value; /* MARKER_VALUE: the decoded value; NULL otherwise */
    char *user;  /* the user's text, never NULL ("" when there is none) */
};

/* Parses bemerkung (NULL = empty) into m. 0, or -1 when out of memory (m then empty). */
int marker_parse(const char *bemerkung, struct marker *m);
void marker_free(struct marker *m);

/* The bemerkung for value (NULL: a slot) and kz, followed by " " and user if user is not
 * empty. malloc'd; NULL when out of memory, value is "" (an empty entry is a slot) or kz is
 * not 1..12. */
char *marker_format(const char *value, int kz, const char *user);

#endif

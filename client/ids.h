/* ids.h: event id generation (internal to liboutbox). */
#ifndef OUTBOX_IDS_H
#define OUTBOX_IDS_H

#include <stdint.h>

#define IDS_UUID_LEN 36

/* Random UUID v4, lower-case text, into out[IDS_UUID_LEN + 1]. */
void ids_uuid4(char *out);

/*
 * Time-ordered UUID v7 (RFC 9562) into out[IDS_UUID_LEN + 1]. *last_ms and *counter carry
 * state between calls so ids from one handle are strictly increasing within a millisecond.
 */
void ids_uuid7(char *out, uint64_t *last_ms, uint16_t *counter);

#endif

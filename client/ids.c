/* ids.c: UUID v4 and v7 text ids from libuuid's random bytes and the clock. */
#include "config.h"

#include <stdio.h>
#include <time.h>
#include <uuid/uuid.h>

#include "ids.h"

void
ids_uuid4(char *out)
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

static uint64_t
ids_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
ids_uuid7(char *out, uint64_t *last_ms, uint16_t *counter)
{
	uuid_t u;
	uint64_t ms = ids_now_ms();
	int i;

	uuid_generate_random(u);
	/* rand_a (12 bits) is a counter seeded randomly each millisecond (RFC 9562, method 1);
	 * when it overflows, borrow the next millisecond so order holds. */
	if (ms <= *last_ms) {
		ms = *last_ms;
		if (++*counter > 0x0fff) {
			ms++;
			*counter = (uint16_t)(u[7] & 0x7f);
		}
	} else {
		*counter = (uint16_t)(((u[6] & 0x03) << 8) | u[7]);
	}
	*last_ms = ms;
	for (i = 0; i < 6; i++)
		u[i] = (unsigned char)(ms >> (40 - 8 * i));
	u[6] = (unsigned char)(0x70 | ((*counter >> 8) & 0x0f));
	u[7] = (unsigned char)(*counter & 0xff);
	u[8] = (unsigned char)(0x80 | (u[8] & 0x3f));
	uuid_unparse_lower(u, out);
}

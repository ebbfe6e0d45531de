/*
 * sink_stdout.c: envelopes as JSON lines on standard output, the sink that needs no
 * server. A message counts as delivered once the batch is flushed to the stream.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sink.h"
#include "util.h"

static int
sink_stdout_publish(struct sink *sk, struct sink_message *msgs, size_t n, char **cause)
{
	size_t i;
	int ok = 1;

	for (i = 0; i < n && ok; i++) {
		ok = fwrite(msgs[i].envelope, 1, msgs[i].envelope_len, stdout) ==
		    msgs[i].envelope_len && putchar('\n') != EOF;
	}
	if (fflush(stdout) != 0)
		ok = 0;
	for (i = 0; i < n; i++) {
		if (ok)
			msgs[i].status = SINK_DELIVERED;
		else
			sink_set_status(&msgs[i], SINK_UNSENT, "cannot write to standard output: %s",
			    strerror(errno));
	}
	if (!ok) {
		*cause = xasprintf("cannot write to standard output: %s", strerror(errno));
		clearerr(stdout);
		return -1;
	}
	return 0;
}

const struct sink_ops sink_stdout_ops = {
	.type = &sink_stdout_type,
	.publish = sink_stdout_publish,
};

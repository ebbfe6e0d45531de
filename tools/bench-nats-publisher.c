/*
 * bench-nats-publisher.c: the baseline for the relay's NATS figures: a bare nats.c
 * JetStream publisher doing what the relay's sink does per message (js_PublishMsgAsync
 * with the event id as MsgId, the same max-pending window, the same bodies) and nothing
 * else, then waiting for every PubAck.
 *
 *   bench-nats-publisher URL SUBJECT_PREFIX BODIES [MAX_PENDING]
 * BODIES holds one message a line: "ID NAME BODY" (the relay's envelopes, written by
 * tools/bench-nats); each goes to SUBJECT_PREFIX + NAME. Prints "N messages in S s: R msg/s".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "bench-lines.h"

/* PubAcks counted by nats.c's thread. */
static pthread_mutex_t bench_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bench_cv = PTHREAD_COND_INITIALIZER;
static long long bench_acked, bench_failed;

/* The signature is nats.c's jsPubAckHandler: pa cannot be const. */
static void
/* cppcheck-suppress constParameter */
bench_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)closure;
	pthread_mutex_lock(&bench_mu);
	if (pa != NULL)
		bench_acked++;
	else {
		if (bench_failed++ == 0)
			fprintf(stderr, "bench-nats: PubAck error: %s\n", pae->ErrText != NULL ?
			    pae->ErrText : natsStatus_GetText(pae->Err));
	}
	pthread_cond_signal(&bench_cv);
	pthread_mutex_unlock(&bench_mu);
	natsMsg_Destroy(msg);
}

static void
bench_nats_check(natsStatus s, const char *what)
{
	if (s != NATS_OK) {
		fprintf(stderr, "bench-nats: %s: %s\n", what, nats_GetLastError(NULL));
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	struct bench_lines bl;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	jsPubOptions po;
	natsMsg *nm;
	char subject[256];
	long long max_pending = 1024;
	size_t i;
	double t0, secs;

	if (argc < 4) {
		fprintf(stderr, "usage: bench-nats-publisher URL SUBJECT_PREFIX BODIES "
		    "[MAX_PENDING]\n");
		return 2;
	}
	if (argc > 4 && bench_lines_int(argv[4], 1, 1000000, &max_pending) != 0) {
		fprintf(stderr, "bench-nats: MAX_PENDING must be 1 to 1000000\n");
		return 2;
	}
	if (bench_lines_read(argv[3], &bl) != 0)
		return 1;
	bench_nats_check(natsConnection_ConnectTo(&nc, argv[1]), "connect");
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = max_pending;
	jo.PublishAsync.AckHandler = bench_on_ack;
	bench_nats_check(natsConnection_JetStream(&js, nc, &jo), "JetStream context");

	t0 = bench_lines_now();
	for (i = 0; i < bl.n; i++) {
		snprintf(subject, sizeof subject, "%s%s", argv[2], bl.v[i].name);
		bench_nats_check(natsMsg_Create(&nm, subject, NULL, bl.v[i].body,
		    (int)bl.v[i].body_len), "message");
		jsPubOptions_Init(&po);
		po.MsgId = bl.v[i].id;
		bench_nats_check(js_PublishMsgAsync(js, &nm, &po), "publish");
	}
	bench_nats_check(js_PublishAsyncComplete(js, NULL), "waiting for PubAcks");
	/* Complete may return before the handler of the last PubAck finished. */
	pthread_mutex_lock(&bench_mu);
	while (bench_acked + bench_failed < (long long)bl.n)
		pthread_cond_wait(&bench_cv, &bench_mu);
	pthread_mutex_unlock(&bench_mu);
	secs = bench_lines_now() - t0;

	if (bench_acked != (long long)bl.n) {
		fprintf(stderr, "bench-nats: %lld PubAcks, %lld errors for %zu messages\n",
		    bench_acked, bench_failed, bl.n);
		return 1;
	}
	printf("%zu messages in %.3f s: %.0f msg/s\n", bl.n, secs, (double)bl.n / secs);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	bench_lines_free(&bl);
	return 0;
}

/*
 * bench-http-publisher.c: the baseline for the relay's HTTP figures: a bare libcurl multi
 * publisher doing what the relay's sink does per request (POST, Content-Type
 * application/json, no Expect: 100-continue, keep-alive connections, the same
 * concurrency, the same bodies, a JSON array of BATCH envelopes per request when BATCH >
 * 1) and nothing else, keeping CONCURRENCY requests in flight and counting 2xx answers.
 *
 *   bench-http-publisher URL BODIES [CONCURRENCY] [BATCH]
 * BODIES holds one message a line: "ID NAME BODY" (tools/bench-lines.h). Prints
 * "N messages in S s: R msg/s" (messages, not requests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "bench-lines.h"

struct bench_http_req {
	CURL *easy;
	char *body;               /* with BATCH > 1, else NULL */
	size_t count;             /* messages in this request */
};

/* Responses are not kept. */
static size_t
bench_http_discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

static void
bench_http_init(struct bench_http_req *req, const char *url, struct curl_slist *hdrs)
{
	CURL *e;

	if ((e = req->easy = curl_easy_init()) == NULL) {
		fprintf(stderr, "bench-http: cannot make a handle\n");
		exit(1);
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, bench_http_discard);
}

/* The next request's body: one envelope, or a JSON array of up to batch of them. */
static void
bench_http_body(struct bench_http_req *req, const struct bench_lines *bl, size_t *next,
    size_t batch)
{
	size_t i, total = 2, used = 0;

	req->count = bl->n - *next < batch ? bl->n - *next : batch;
	free(req->body);
	req->body = NULL;
	if (batch == 1) {
		curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, bl->v[*next].body);
		curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)bl->v[*next].body_len);
		(*next)++;
		return;
	}
	for (i = 0; i < req->count; i++)
		total += bl->v[*next + i].body_len + 1;
	if ((req->body = malloc(total + 1)) == NULL) {
		fprintf(stderr, "bench-http: out of memory\n");
		exit(1);
	}
	req->body[used++] = '[';
	for (i = 0; i < req->count; i++) {
		if (i > 0)
			req->body[used++] = ',';
		memcpy(req->body + used, bl->v[*next + i].body, bl->v[*next + i].body_len);
		used += bl->v[*next + i].body_len;
	}
	req->body[used++] = ']';
	req->body[used] = '\0';
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)used);
	*next += req->count;
}

/* Collect finished requests: the messages they delivered; exits on any failure. */
static size_t
bench_http_collect(CURLM *multi, size_t *active)
{
	struct bench_http_req *req;
	CURLMsg *cm;
	long code = 0;
	int left;
	size_t done = 0;

	while ((cm = curl_multi_info_read(multi, &left)) != NULL) {
		if (cm->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, (char **)&req);
		curl_easy_getinfo(cm->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		if (cm->data.result != CURLE_OK || code < 200 || code >= 300) {
			fprintf(stderr, "bench-http: %s, HTTP %ld\n",
			    curl_easy_strerror(cm->data.result), code);
			exit(1);
		}
		curl_multi_remove_handle(multi, req->easy);
		done += req->count;
		req->count = 0;
		(*active)--;
	}
	return done;
}

int
main(int argc, char **argv)
{
	struct bench_lines bl;
	struct bench_http_req *reqs;
	struct curl_slist *hdrs = NULL;
	CURLM *multi;
	long long concurrency = 16, batch = 1;
	size_t i, next = 0, active = 0, delivered = 0, done;
	int running;
	double t0, secs;

	if (argc < 3) {
		fprintf(stderr, "usage: bench-http-publisher URL BODIES [CONCURRENCY] [BATCH]\n");
		return 2;
	}
	if ((argc > 3 && bench_lines_int(argv[3], 1, 10000, &concurrency) != 0) ||
	    (argc > 4 && bench_lines_int(argv[4], 1, 10000, &batch) != 0)) {
		fprintf(stderr, "bench-http: CONCURRENCY and BATCH must be 1 to 10000\n");
		return 2;
	}
	if (bench_lines_read(argv[2], &bl) != 0)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if ((multi = curl_multi_init()) == NULL || hdrs == NULL ||
	    (reqs = calloc((size_t)concurrency, sizeof *reqs)) == NULL) {
		fprintf(stderr, "bench-http: out of memory\n");
		return 1;
	}
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)concurrency);
	for (i = 0; i < (size_t)concurrency; i++)
		bench_http_init(&reqs[i], argv[1], hdrs);

	t0 = bench_lines_now();
	while (delivered < bl.n) {
		for (i = 0; i < (size_t)concurrency && next < bl.n; i++) {
			if (reqs[i].count > 0)
				continue;
			bench_http_body(&reqs[i], &bl, &next, (size_t)batch);
			curl_multi_add_handle(multi, reqs[i].easy);
			active++;
		}
		curl_multi_perform(multi, &running);
		done = bench_http_collect(multi, &active);
		delivered += done;
		/* Wait only when nothing finished: a free slot is refilled at once. */
		if (done == 0 && active > 0)
			curl_multi_poll(multi, NULL, 0, 1000, NULL);
	}
	secs = bench_lines_now() - t0;

	printf("%zu messages in %.3f s: %.0f msg/s\n", bl.n, secs, (double)bl.n / secs);
	for (i = 0; i < (size_t)concurrency; i++) {
		curl_easy_cleanup(reqs[i].easy);
		free(reqs[i].body);
	}
	free(reqs);
	curl_multi_cleanup(multi);
	curl_slist_free_all(hdrs);
	curl_global_cleanup();
	bench_lines_free(&bl);
	return 0;
}

/*
 * The iocx driver of a bench phase: one engine per phase, one
 * iocx_connect() per slot start, closed from its own on_connect.  --timeout
 * becomes the request's deadline_ms, so the engine's own deadlines are
 * what gets measured.  Portable: it uses only the public API, so it runs
 * unchanged on every backend.
 */
#include <stdlib.h>

#include "drivers.h"

struct iocx_drv {
	struct phase *phase;
	iocx_engine *engine;
	struct iocx_connect_request req;
	enum iocx_close_mode mode;
};

static void on_connect(iocx_conn *c, const struct iocx_connect_result *r,
		       void *user)
{
	struct slot *s = user;
	struct iocx_drv *d = phase_driver_ctx(s->phase);
	struct outcome o = {
		.status = r->status,
		.latency_ns = r->latency_ns,
		.payload_sent = r->payload_sent,
		.fastopen = r->fastopen,
	};

	phase_complete(s, &o);
	iocx_close(c, d->mode);
	phase_release(s);
}

static void on_close(iocx_conn *c, int reason, void *user)
{
	struct slot *s = user;

	(void)c;
	(void)reason;
	phase_closed(s->phase);
}

static int iocx_drv_init(struct phase *p, void **ctx)
{
	const struct phase_config *cfg = phase_config_of(p);
	struct iocx_engine_options eo;
	struct iocx_drv *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return IOCX_E_NOMEM;
	iocx_engine_options_init(&eo);
	eo.workers = cfg->workers;
	eo.batch = cfg->opt->batch;
	rc = iocx_engine_create(&eo, &d->engine);
	if (rc != IOCX_OK) {
		free(d);
		return rc;
	}
	d->phase = p;
	d->mode = cfg->opt->close_mode == BENCH_CLOSE_ABORT
			  ? IOCX_CLOSE_ABORT
			  : IOCX_CLOSE_GRACEFUL;
	d->req = (struct iocx_connect_request){
		.remote = cfg->remote,
		.remote_len = cfg->remote_len,
		.payload = cfg->opt->payload ? cfg->payload : NULL,
		.payload_len = cfg->opt->payload,
		/* One shared buffer that outlives the engine. */
		.payload_ownership = IOCX_PAYLOAD_BORROW,
		.flags = cfg->opt->fastopen ? IOCX_CONNECT_FASTOPEN : 0,
		.on_connect = on_connect,
		.on_close = on_close,
		/* The engine enforces --timeout itself (IOCX_E_TIMEDOUT). */
		.deadline_ms = (uint32_t)cfg->opt->timeout_ms,
	};
	*ctx = d;
	return 0;
}

static int iocx_drv_start(void *ctx, struct slot *s)
{
	struct iocx_drv *d = ctx;
	struct iocx_connect_request req = d->req;

	req.user = s;
	return iocx_connect(d->engine, &req, NULL);
}

static void iocx_drv_fini(void *ctx)
{
	struct iocx_drv *d = ctx;

	iocx_engine_destroy(d->engine);
	free(d);
}

static const char *iocx_drv_backend(void *ctx)
{
	return iocx_engine_backend(((struct iocx_drv *)ctx)->engine);
}

static unsigned iocx_drv_workers(void *ctx)
{
	return iocx_engine_workers(((struct iocx_drv *)ctx)->engine);
}

const struct driver iocx_driver = {
	.name = "iocx",
	.init = iocx_drv_init,
	.start = iocx_drv_start,
	.expire = NULL,			/* deadline_ms does it */
	.fini = iocx_drv_fini,
	.backend = iocx_drv_backend,
	.workers = iocx_drv_workers,
};

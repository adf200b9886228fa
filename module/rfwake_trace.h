/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of rfwake (events/rfwake/ in tracefs).
 *
 * They let a tracer measure wake-to-run latency: rfwake_wake is the moment
 * a waiter is woken, rfwake_wait_end the moment the woken thread runs again
 * (and sched_switch what happened between).  Domains are named by a counter,
 * never by a kernel address.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM rfwake

#if !defined(_RFWAKE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _RFWAKE_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(rfwake_wake,
	    TP_PROTO(u64 domain, u32 id, u64 payload, int woke),
	    TP_ARGS(domain, id, payload, woke),
	    TP_STRUCT__entry(__field(u64, domain)
			     __field(u32, id)
			     __field(int, woke)
			     __field(u64, payload)),
	    TP_fast_assign(__entry->domain = domain;
			   __entry->id = id;
			   __entry->woke = woke;
			   __entry->payload = payload;),
	    TP_printk("domain=%llu id=%u payload=0x%llx woke=%d",
		      __entry->domain, __entry->id, __entry->payload,
		      __entry->woke)
);

TRACE_EVENT(rfwake_wait_begin,
	    TP_PROTO(u64 domain, u32 id),
	    TP_ARGS(domain, id),
	    TP_STRUCT__entry(__field(u64, domain)
			     __field(u32, id)),
	    TP_fast_assign(__entry->domain = domain;
			   __entry->id = id;),
	    TP_printk("domain=%llu id=%u", __entry->domain, __entry->id)
);

TRACE_EVENT(rfwake_wait_end,
	    TP_PROTO(u64 domain, u32 id, int ret, u32 count, u64 payload),
	    TP_ARGS(domain, id, ret, count, payload),
	    TP_STRUCT__entry(__field(u64, domain)
			     __field(u32, id)
			     __field(int, ret)
			     __field(u32, count)
			     __field(u64, payload)),
	    TP_fast_assign(__entry->domain = domain;
			   __entry->id = id;
			   __entry->ret = ret;
			   __entry->count = count;
			   __entry->payload = payload;),
	    TP_printk("domain=%llu id=%u ret=%d count=%u payload=0x%llx",
		      __entry->domain, __entry->id, __entry->ret,
		      __entry->count, __entry->payload)
);

TRACE_EVENT(rfwake_swap,
	    TP_PROTO(u64 domain, u32 wake_id, u32 wait_id),
	    TP_ARGS(domain, wake_id, wait_id),
	    TP_STRUCT__entry(__field(u64, domain)
			     __field(u32, wake_id)
			     __field(u32, wait_id)),
	    TP_fast_assign(__entry->domain = domain;
			   __entry->wake_id = wake_id;
			   __entry->wait_id = wait_id;),
	    TP_printk("domain=%llu wake_id=%u wait_id=%u",
		      __entry->domain, __entry->wake_id, __entry->wait_id)
);

/*
 * A watched thread blocked (rfwake_watch.c): fired in the scheduler, at the
 * switch; @notify says whether its armed word asked for a wake.
 */
TRACE_EVENT(rfwake_block,
	    TP_PROTO(u64 domain, u32 id, u32 seq, bool notify),
	    TP_ARGS(domain, id, seq, notify),
	    TP_STRUCT__entry(__field(u64, domain)
			     __field(u32, id)
			     __field(u32, seq)
			     __field(bool, notify)),
	    TP_fast_assign(__entry->domain = domain;
			   __entry->id = id;
			   __entry->seq = seq;
			   __entry->notify = notify;),
	    TP_printk("domain=%llu id=%u seq=%u notify=%d",
		      __entry->domain, __entry->id, __entry->seq,
		      __entry->notify)
);

#endif /* _RFWAKE_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE rfwake_trace
#include <trace/define_trace.h>

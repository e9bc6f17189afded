//! kapi-perf: the load and research toolkit (see issue: kapi-perf).

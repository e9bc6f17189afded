//! `write_handoff` for values stored as protobuf (the etcd backend's default). Encode-once
//! on the write path (issue #20): pods created and patched through the REST
//! handler reach the watch cache as their writer's hand-off (the stored JSON with the
//! revision spliced in, the selector values the writer read), not as a decode of the
//! stored value, and every such entry is byte for byte what the decode gives; stored as
//! JSON, and stored as protobuf (the etcd backend's default), where the hand-off is the
//! object's JSON written beside the value when the object is in the protobuf round
//! trip's normal form. The writes' answers, spliced from the same JSON, are checked
//! against the answer written from the object (the hand-off check is on) and against
//! the cache's entry.

#[path = "common/handoff.rs"]
mod handoff;

#[test]
fn protobuf_stored_pods_reach_the_cache_as_their_writers_hand_off_byte_for_byte() {
    handoff::handed_over_byte_for_byte(Some("application/vnd.kubernetes.protobuf"));
}

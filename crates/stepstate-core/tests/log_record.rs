//! The record format: every record survives encode/decode unchanged, and no input makes the
//! decoder panic.

use proptest::prelude::*;
use stepstate_core::log::record::{check_frame, Frame, HEADER_LEN};
use stepstate_core::log::LogRecord;

fn roundtrip(record: LogRecord<'_>) {
    let mut buf = Vec::new();
    record.encode_into(&mut buf);
    assert_eq!(buf.len(), record.encoded_len());
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    assert_eq!(len, buf.len() - HEADER_LEN);
    assert_eq!(LogRecord::decode(&buf[HEADER_LEN..]).unwrap(), record);
    assert_eq!(
        check_frame(&buf),
        Frame::Valid {
            record,
            len: buf.len()
        }
    );
}

#[test]
fn each_kind_of_record_decodes_to_itself() {
    roundtrip(LogRecord::Put {
        group: "orders",
        key: "o:1/é",
        value: r#"{"total":12.5,"items":[1,2]}"#,
        expires_at_ms: 1_700_000_000_000,
    });
    roundtrip(LogRecord::Put {
        group: "g",
        key: "k",
        value: "",
        expires_at_ms: 0,
    });
    roundtrip(LogRecord::Delete {
        group: "users",
        key: "u1",
    });
    roundtrip(LogRecord::Clear { group: "sessions" });
    roundtrip(LogRecord::GroupMark {
        group: "sessions",
        log_offset: u64::MAX - 7,
    });
}

#[test]
fn trailing_bytes_unknown_tags_and_bad_utf8_are_rejected_as_corrupt() {
    let mut buf = Vec::new();
    LogRecord::Clear { group: "g" }.encode_into(&mut buf);
    let mut payload = buf[HEADER_LEN..].to_vec();
    payload.push(0);
    assert_eq!(LogRecord::decode(&payload).unwrap_err().code(), "CORRUPT");
    assert_eq!(LogRecord::decode(&[9]).unwrap_err().code(), "CORRUPT");
    assert_eq!(LogRecord::decode(&[]).unwrap_err().code(), "CORRUPT");
    assert_eq!(
        LogRecord::decode(&[3, 1, 0, 0, 0, 0xff])
            .unwrap_err()
            .code(),
        "CORRUPT"
    );
}

#[test]
fn a_damaged_length_or_payload_fails_the_frame_check() {
    let mut buf = Vec::new();
    LogRecord::Delete {
        group: "g",
        key: "k",
    }
    .encode_into(&mut buf);
    for i in 0..buf.len() {
        let mut damaged = buf.clone();
        damaged[i] ^= 0x10;
        assert!(
            !matches!(check_frame(&damaged), Frame::Valid { .. }),
            "flipping byte {i} went unnoticed"
        );
    }
}

fn any_record() -> impl Strategy<Value = (u8, String, String, String, u64)> {
    (0u8..4, ".{0,20}", ".{0,20}", ".{0,200}", any::<u64>())
}

proptest! {
    #[test]
    fn decode_of_encode_is_the_identity((kind, group, key, value, expires_at_ms) in any_record()) {
        let record = match kind {
            0 => LogRecord::Put { group: &group, key: &key, value: &value, expires_at_ms },
            1 => LogRecord::Delete { group: &group, key: &key },
            2 => LogRecord::Clear { group: &group },
            _ => LogRecord::GroupMark { group: &group, log_offset: expires_at_ms },
        };
        let mut buf = Vec::new();
        record.encode_into(&mut buf);
        prop_assert_eq!(LogRecord::decode(&buf[HEADER_LEN..]).unwrap(), record);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = LogRecord::decode(&bytes);
        let _ = check_frame(&bytes);
    }

    #[test]
    fn decoding_a_damaged_record_never_panics(
        (kind, group, key, value, expires_at_ms) in any_record(),
        position in any::<usize>(),
        mask in 1u8..,
    ) {
        let record = match kind {
            0 => LogRecord::Put { group: &group, key: &key, value: &value, expires_at_ms },
            1 => LogRecord::Delete { group: &group, key: &key },
            _ => LogRecord::Clear { group: &group },
        };
        let mut buf = Vec::new();
        record.encode_into(&mut buf);
        let i = position % buf.len();
        buf[i] ^= mask;
        let _ = LogRecord::decode(&buf[HEADER_LEN..]);
        let still_valid = matches!(check_frame(&buf), Frame::Valid { .. });
        prop_assert!(!still_valid, "a flipped byte went unnoticed");
    }
}

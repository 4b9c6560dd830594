shanfu_afl::target_main!(tlv_codec);

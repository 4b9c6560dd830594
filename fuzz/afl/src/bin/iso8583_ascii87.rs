shanfu_afl::target_main!(iso8583_ascii87);

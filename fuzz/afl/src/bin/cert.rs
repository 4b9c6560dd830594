shanfu_afl::target_main!(cert_recovery);

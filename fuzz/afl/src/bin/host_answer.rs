shanfu_afl::target_main!(host_answer);

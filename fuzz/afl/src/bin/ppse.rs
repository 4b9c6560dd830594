shanfu_afl::target_main!(ppse_fci);

shanfu_afl::target_main!(dol_builder);

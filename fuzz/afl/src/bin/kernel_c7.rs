shanfu_afl::target_main!(kernel_c7);

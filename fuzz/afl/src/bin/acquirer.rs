shanfu_afl::target_main!(acquirer_request);

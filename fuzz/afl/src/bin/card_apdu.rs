shanfu_afl::target_main!(card_apdu);

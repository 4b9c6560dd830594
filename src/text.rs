//! Every string the cashier screens and the receipt show, in English and Simplified Chinese, in
//! one table. The language is a setting (`language` under `[terminal]`, see `settings.rs`);
//! how a transaction ended comes from [`crate::terminal::disposition::Disposition`] and the
//! response-code table of the host contract, which carry their own two languages.
//!
//! A text with `{0}`, `{1}` … takes arguments ([`T::fmt`]): each language puts them where its
//! grammar wants them.

use host_contract::Lang;

macro_rules! texts {
    ($($id:ident => $en:expr, $zh:expr;)*) => {
        /// One string of the user interface.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum T { $($id),* }

        impl T {
            /// Every text, for the completeness tests.
            pub const ALL: &'static [T] = &[$(T::$id),*];

            /// The text in `lang`.
            pub fn s(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$id, Lang::En) => $en, (T::$id, Lang::ZhCn) => $zh,)*
                }
            }
        }
    };
}

texts! {
    // Title line and status bar.
    TerminalLabel => "terminal", "终端";
    Training => "TRAINING — NOT A PAYMENT", "培训模式 — 非真实交易";
    LinkUnauthenticated => "UNAUTHENTICATED", "链路未认证";
    PhoneInField => "phone in field", "手机在感应区";
    WaitingForCard => "waiting for card", "等待挥卡";
    Reading => "reading", "读卡中";
    Ready => "ready", "就绪";
    Host => "host", "主机";
    Online => "online", "在线";
    Offline => "OFFLINE", "离线";
    StoreAndForward => "S&F {0}", "待上送 {0}";

    // Sale (amount entry).
    SaleTitle => " Sale ", " 消费 ";
    SalePrompt => "SALE — enter the amount", "消费 — 请输入金额";
    ContactlessBelow => "Contactless below {0}", "非接交易限额 {0}";
    CvmFrom => "CVM from {0} (verify on phone)", "{0} 起需验证持卡人（在手机上验证）";
    NoLimit => "none", "无";
    BadAmount => "amount {0}: {1}", "金额 {0} 无效：{1}";

    // The demo phone.
    DemoPhoneTitle => " Demo phone ", " 演示手机 ";
    PhoneWallet => "Phone wallet (demo)", "手机钱包（演示）";
    PhoneAsksFingerprint => "screen: confirm with fingerprint", "屏幕：请验证指纹";
    PhoneVerified => "screen: verified ✓ — tap to pay", "屏幕：已验证 ✓ — 请挥手机支付";
    PhoneLocked => "screen: locked", "屏幕：已锁定";
    NoFingerprintSensor => "a plastic card has no fingerprint sensor", "实体卡没有指纹传感器";
    NoSuchCard => "the wallet has no card {0}", "钱包里没有第 {0} 张卡";
    NoSaleWaiting => "no sale is waiting for a card: the tap is ignored", "没有等待挥卡的交易：本次挥卡不计";

    // A running operation.
    PaymentTitle => " Payment ", " 支付 ";
    PresentCard => "Present card or phone", "请挥卡或手机";
    PresentCardAgain => "Present card again", "请再次挥卡";
    SeePhone => "SEE PHONE", "请查看手机";
    HoldStill => "Hold still…", "请保持不动…";
    CardRead => "Card read — you may remove it", "读卡完成 — 可以移开";
    Authorizing => "Authorizing…", "正在授权…";
    SeePhoneHelp => "Unlock your phone and confirm with fingerprint, then tap again", "请解锁手机并验证指纹，然后再次挥手机";
    ReaderName => "reader {0}", "读卡器 {0}";
    SecondsLeft => "{0} s left · Esc to cancel", "剩余 {0} 秒 · Esc 取消";
    Refunding => "Refunding transaction {0}…", "正在退货：交易 {0}…";
    Voiding => "Voiding transaction {0}…", "正在撤销：交易 {0}…";
    Settling => "Settling…", "正在结算…";
    ReaderBusy => "the reader is busy", "读卡器忙";
    CannotCancel => "this reader stops waiting at its timeout", "此读卡器要到超时才停止等待";

    // Outcome.
    VerifiedByDevice => "Verified by device", "已在设备上验证持卡人";
    PleaseSign => "Please sign the receipt", "请在签购单上签名";
    CardLine => "Card {0}  {1}  {2}", "卡号 {0}  {1}  {2}";
    AuthLine => "Auth code {0}  RRN {1}  STAN {2}", "授权码 {0}  参考号 {1}  流水号 {2}";
    TapsInField => "{0} tap(s), card in field {1} ms", "挥卡 {0} 次，卡片在感应区 {1} 毫秒";
    TapsReadIn => "{0} tap(s), card read in {1} ms", "挥卡 {0} 次，读卡用时 {1} 毫秒";
    Error => "ERROR", "错误";
    WorkerStopped => "the terminal's worker stopped unexpectedly; check the journal", "终端工作线程意外停止；请检查交易流水";
    ShowingOutcome => "showing the outcome to the customer…", "正在向顾客展示结果…";
    NothingDone => "nothing done", "未做任何操作";
    RefundDone => "Refund of transaction {0}: {1}", "交易 {0} 已退货：{1}";
    VoidDone => "Void of transaction {0}: {1}", "交易 {0} 已撤销：{1}";
    VoidQueued => "Void of transaction {0} not confirmed yet: the reversal is queued and retried", "交易 {0} 的撤销尚未确认：冲正已排队，将重试";
    NotAnsweredYet => "Not answered yet — it is retried", "尚未应答 — 将重试";
    Voided => "VOIDED", "已撤销";
    VoidPending => "VOID PENDING", "撤销待确认";
    Refunded => "REFUNDED #{0}", "已退货 #{0}";
    RefundNotDone => "REFUND NOT DONE", "退货未完成";
    VoidNotDone => "VOID NOT DONE", "撤销未完成";
    Reconciled => "RECONCILED", "对账平";
    NotReconciled => "NOT RECONCILED", "对账不平";
    SettleSummary => "{0} sales {1}, {2} refunds {3}; reversals sent {4}, advices sent {5}", "消费 {0} 笔 {1}，退货 {2} 笔 {3}；已发冲正 {4}，已发通知 {5}";
    SettlementFailed => "SETTLEMENT FAILED", "结算失败";

    // Confirmation of a refund or void.
    ConfirmTitle => " Confirm ", " 确认 ";
    ConfirmRefund => "Refund {0} of transaction {1} ({2})?", "退货 {0}：交易 {1}（{2}）？";
    ConfirmVoid => "Void {0} of transaction {1} ({2})?", "撤销 {0}：交易 {1}（{2}）？";
    ConfirmKeys => "y = yes · any other key = no", "y = 是 · 其他键 = 否";
    NoCard => "no card", "无卡";

    // Receipt and detail screens.
    ReceiptTitle => " Receipt ", " 签购单 ";
    DetailTitle => " Transaction ", " 交易详情 ";
    NoTransaction => "no transaction", "无交易";
    ReceiptSaved => "receipt saved to {0}", "签购单已保存到 {0}";
    ReceiptNotSaved => "could not save the receipt to {0}: {1}", "无法保存签购单到 {0}：{1}";

    // History.
    HistoryTitle => " History ", " 交易记录 ";
    HistoryFiltered => " History — filter: {0} ", " 交易记录 — 筛选：{0} ";
    ColId => "id", "编号";
    ColTime => "time", "时间";
    ColKind => "kind", "类型";
    ColAmount => "amount", "金额";
    ColOutcome => "outcome", "结果";
    ColCard => "card", "卡号";
    ColState => "state", "状态";
    InProgress => "…", "…";
    StateStarted => "Started", "已开始";
    StateCardRead => "Card read", "已读卡";
    StateSent => "Sent", "已发送";
    StateAnswered => "Answered", "已应答";
    StateCompleted => "Completed", "已完成";
    StateReversalPending => "Reversal pending", "待冲正";
    StateReversed => "Reversed", "已冲正";
    StateAdvicePending => "Advice pending", "待发通知";
    StateAdvised => "Advised", "已通知";
    StateSettled => "Settled", "已结算";

    // Settlement.
    SettlementTitle => " Settlement ", " 结算 ";
    ThisBatch => "This batch (what the next settlement reconciles)", "本批次（下次结算对账的内容）";
    ApprovedSales => "Approved sales", "成功消费";
    Refunds => "Refunds", "退货";
    VoidsPending => "Voids pending", "待确认撤销";
    Net => "Net", "净额";
    PendingWork => "Pending reversals {0}   pending advices {1}", "待发冲正 {0}   待发通知 {1}";
    LastSettlement => "Last settlement: {0}", "上次结算：{0}";

    // Help and the key hints (src/pos/keys.rs).
    HelpTitle => " Keys — any key closes ", " 按键 — 按任意键关闭 ";
    CtxSale => "Sale", "消费";
    CtxPayment => "Payment", "支付";
    CtxPhone => "Demo phone", "演示手机";
    CtxOutcome => "Outcome", "结果";
    CtxReceipt => "Receipt", "签购单";
    CtxHistory => "History", "交易记录";
    CtxFilter => "Filter", "筛选";
    CtxDetail => "Details", "详情";
    CtxSettlement => "Settlement", "结算";
    CtxConfirm => "Confirm", "确认";
    CtxAnywhere => "Anywhere", "任意界面";
    KeyAmount => "amount", "金额";
    KeyCharge => "charge", "收款";
    KeyDelete => "delete", "删除";
    KeyClear => "clear", "清除";
    KeyHistory => "history", "交易记录";
    KeySettle => "settle", "结算";
    KeyHelp => "help", "帮助";
    KeyQuit => "quit", "退出";
    KeyTap => "tap phone", "挥手机";
    KeyFingerprint => "fingerprint", "指纹";
    KeyPickCard => "pick card", "选卡";
    KeyCancel => "cancel", "取消";
    KeyNextSale => "next sale", "下一笔";
    KeyReceipt => "receipt", "签购单";
    KeyExport => "export to file", "导出到文件";
    KeyBack => "back", "返回";
    KeyNewSale => "new sale", "新交易";
    KeySelect => "select", "选择";
    KeyDetails => "details", "详情";
    KeyFilter => "filter", "筛选";
    KeyRefund => "refund", "退货";
    KeyVoid => "void", "撤销";
    KeyToSale => "sale", "消费";
    KeyTypeFilter => "type to filter", "输入筛选";
    KeyDone => "done", "完成";
    KeyClearFilter => "clear filter", "清除筛选";
    KeyRunSettlement => "run settlement (upload, reconcile)", "执行结算（上送、对账）";
    KeyYes => "yes", "是";
    KeyNo => "any other key = no", "其他键 = 否";
    KeyInterrupt => "quit (cancels the wait first)", "退出（先取消等待）";
    KeyClose => "any key closes this help", "按任意键关闭帮助";

    // Receipt labels (src/terminal/receipt.rs).
    RMerchantId => "Merchant ID", "商户编号";
    RTerminalId => "Terminal ID", "终端编号";
    RDateTime => "Date/time", "日期时间";
    RCard => "Card", "卡号";
    RAid => "AID", "AID";
    RKernel => "Kernel", "内核";
    RAtc => "ATC", "ATC";
    RStan => "STAN", "流水号";
    RRrn => "RRN", "参考号";
    RAuthCode => "Auth code", "授权码";
    RResponse => "Response", "应答码";
    ROriginal => "Original", "原交易";
    RAmount => "AMOUNT", "金额";
    RVoided => "VOIDED — the sale is cancelled, nothing is charged", "已撤销 — 交易取消，未扣款";
    RVoidPending => "VOID PENDING — the reversal is queued and retried", "撤销待确认 — 冲正已排队，将重试";
    RRefundedBy => "REFUNDED by transaction #{0}", "已退货（退货交易 #{0}）";
    RInProgress => "IN PROGRESS", "处理中";
    RSignature => "Signature: ______________________", "持卡人签名：____________________";
    RPinOnline => "PIN verified by the issuer", "密码已由发卡行验证";
    RPinBypassed => "PIN not entered (bypassed)", "未输入密码（跳过）";
    RNoCvm => "No cardholder verification required", "免密免签";
    RNoCharge => "NO CHARGE", "未扣款";

    // The transit gate's display (src/gate/): green on open, red with the reason.
    GateWelcome => "Welcome {0}", "欢迎乘车 {0}";
    GateWelcomeBalance => "Welcome {0} — balance {1}", "欢迎乘车 {0} — 余额 {1}";
    GateGoodbye => "Goodbye {0}", "再见 {0}";
    GateDenied => "Card denied — see staff", "此卡已列入黑名单 — 请咨询工作人员";
    GatePassback => "Card already used here — wait {0} s", "此卡刚刚使用过 — 请等待 {0} 秒";
    GateOdaFailed => "Card not accepted", "卡片认证失败";
    GateDeclined => "Card declined", "卡片拒绝";
    GateOnlineRefused => "Card not accepted at the gate — use another card", "此卡不能在闸机使用 — 请换卡";
    GateReadError => "Read error — tap again", "读卡失败 — 请重新刷卡";
    GateNotAccepted => "Card not accepted", "不支持此卡";
    GateSeePhone => "See phone", "请查看手机";
    GateInsufficientBalance => "Insufficient balance — top up", "余额不足 — 请充值";
    GateIssuerNotAccepted => "Card of this city not accepted", "不支持该城市交通卡";
    GateNoEntry => "No entry recorded — see staff", "无进站记录 — 请咨询工作人员";
    GateAlreadyEntered => "Already entered — see staff", "已有进站记录 — 请咨询工作人员";
    PinTitle => "Enter PIN", "请输入密码";
    PinCard => "card", "卡号";
    PinKeys => "Enter done · Backspace correct · Esc cancel", "Enter 确认 · 退格 更正 · Esc 取消";
    PinBypassKey => "b PIN bypass", "b 免密";
    PinLength => "4 to 12 digits", "4 至 12 位";
}

impl T {
    /// The text with `{0}`, `{1}` … replaced by `args`.
    pub fn fmt(self, lang: Lang, args: &[&dyn std::fmt::Display]) -> String {
        let mut s = self.s(lang).to_string();
        for (i, a) in args.iter().enumerate() {
            s = s.replace(&format!("{{{i}}}"), &a.to_string());
        }
        s
    }
}

/// Columns a string takes on a terminal or a fixed-width receipt: CJK characters and full-width
/// forms take two.
pub fn width(s: &str) -> usize {
    s.chars()
        .map(|c| match c {
            '\u{1100}'..='\u{115F}' | '\u{2E80}'..='\u{303E}' | '\u{3041}'..='\u{33FF}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' => 2,
            '\u{AC00}'..='\u{D7A3}' | '\u{F900}'..='\u{FAFF}' | '\u{FE30}'..='\u{FE4F}' | '\u{FF00}'..='\u{FF60}' | '\u{FFE0}'..='\u{FFE6}' => 2,
            _ => 1,
        })
        .sum()
}

/// `s` padded with spaces to `w` columns.
pub fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(s: &str) -> Vec<usize> {
        (0..10).filter(|i| s.contains(&format!("{{{i}}}"))).collect()
    }

    #[test]
    fn every_text_exists_in_both_languages_with_the_same_arguments() {
        for t in T::ALL {
            let (en, zh) = (t.s(Lang::En), t.s(Lang::ZhCn));
            assert!(!en.is_empty() && !zh.is_empty(), "{t:?}");
            assert_eq!(placeholders(en), placeholders(zh), "{t:?}: {en} / {zh}");
        }
    }

    #[test]
    fn arguments_and_widths() {
        assert_eq!(T::RefundDone.fmt(Lang::En, &[&3, &"¥1.00"]), "Refund of transaction 3: ¥1.00");
        assert_eq!(T::RefundDone.fmt(Lang::ZhCn, &[&3, &"¥1.00"]), "交易 3 已退货：¥1.00");
        assert_eq!(width("金额"), 4);
        assert_eq!(pad("金额", 6), "金额  ");
        assert_eq!(pad("AMOUNT", 13).len(), 13);
    }
}

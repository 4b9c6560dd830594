//! The Outcome parameter set and UI requests (EMV Contactless Book A §6-9, Book B §3.5;
//! REFERENCE.md §1.9-1.10).

use serde::{Deserialize, Serialize};

/// Outcome status (Book A Table 6-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Approved,
    Declined,
    OnlineRequest,
    EndApplication,
    SelectNext,
    TryAgain,
    TryAnotherInterface,
}

/// Where the Entry Point restarts (Book B §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Start {
    A,
    B,
    C,
    D,
}

/// Cardholder verification method of the outcome (Book A §6.2). Serialized by its contract
/// name ([`Cvm::name`]), so journals and reports say `NO_CVM` for "not applicable" too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Cvm {
    NoCvm,
    /// "Confirmation Code Verified": the consumer device (phone) verified the holder.
    Cdcvm,
    Signature,
    OnlinePin,
    /// Written as `NO_CVM` and read back as [`Cvm::NoCvm`].
    #[serde(rename = "NO_CVM", skip_deserializing)]
    NotApplicable,
}

impl Cvm {
    pub fn name(self) -> &'static str {
        match self {
            Cvm::NoCvm | Cvm::NotApplicable => "NO_CVM",
            Cvm::Cdcvm => "CDCVM",
            Cvm::Signature => "SIGNATURE",
            Cvm::OnlinePin => "ONLINE_PIN",
        }
    }
}

/// UI message identifiers (Book A §9.4; values as in REFERENCE.md §1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum MessageId {
    Approved = 0x03,
    NotAuthorised = 0x07,
    EnterPin = 0x09,
    ProcessingError = 0x0F,
    RemoveCard = 0x10,
    Welcome = 0x14,
    PresentCard = 0x15,
    Processing = 0x16,
    CardReadOk = 0x17,
    InsertOrSwipe = 0x18,
    PresentOneCardOnly = 0x19,
    ApprovedSign = 0x1A,
    Authorising = 0x1B,
    TryAnotherCard = 0x1C,
    InsertCard = 0x1D,
    ClearDisplay = 0x1E,
    SeePhone = 0x20,
    PresentCardAgain = 0x21,
}

impl MessageId {
    /// The cardholder-facing text (English; Book A §9.4).
    pub fn text(self) -> &'static str {
        match self {
            MessageId::Approved => "Approved",
            MessageId::NotAuthorised => "Not authorised",
            MessageId::EnterPin => "Please enter your PIN",
            MessageId::ProcessingError => "Processing error",
            MessageId::RemoveCard => "Please remove card",
            MessageId::Welcome => "Welcome",
            MessageId::PresentCard => "Present card",
            MessageId::Processing => "Processing",
            MessageId::CardReadOk => "Card read OK - please remove card",
            MessageId::InsertOrSwipe => "Please insert or swipe card",
            MessageId::PresentOneCardOnly => "Please present one card only",
            MessageId::ApprovedSign => "Approved - please sign",
            MessageId::Authorising => "Authorising - please wait",
            MessageId::TryAnotherCard => "Insert, swipe or try another card",
            MessageId::InsertCard => "Please insert card",
            MessageId::ClearDisplay => "",
            MessageId::SeePhone => "See phone for instructions",
            MessageId::PresentCardAgain => "Present card again",
        }
    }
}

/// UI status (Book A §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UiStatus {
    NotReady,
    Idle,
    ReadyToRead,
    Processing,
    CardReadSuccessfully,
    ProcessingError,
}

/// What the value on the display means (Book A §9.2 "Value Qualifier").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueQualifier {
    Amount,
    Balance,
}

/// A UI Request (Book A §6.2, §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UiRequest {
    pub message: MessageId,
    pub status: UiStatus,
    /// Hold time in milliseconds (Book A codes it in units of 100 ms).
    pub hold_time_ms: u32,
    /// A value to show, in minor units, and what it is.
    pub value: Option<(ValueQualifier, u64)>,
}

impl UiRequest {
    pub fn new(message: MessageId, status: UiStatus) -> Self {
        UiRequest { message, status, hold_time_ms: 0, value: None }
    }
    pub fn hold(mut self, ms: u32) -> Self {
        self.hold_time_ms = ms;
        self
    }
}

/// Alternate interface the outcome prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AltInterface {
    ContactChip,
    MagStripe,
}

/// Result of offline data authentication for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OdaResult {
    #[serde(rename = "NOT_PERFORMED")]
    NotPerformed,
    #[serde(rename = "fDDA_OK")]
    FddaOk,
    #[serde(rename = "fDDA_FAILED")]
    FddaFailed,
}

impl OdaResult {
    pub fn name(self) -> &'static str {
        match self {
            OdaResult::NotPerformed => "NOT_PERFORMED",
            OdaResult::FddaOk => "fDDA_OK",
            OdaResult::FddaFailed => "fDDA_FAILED",
        }
    }
}

/// The Outcome parameter set (Book A §6.2) plus what the terminal needs to act and report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub start: Option<Start>,
    pub cvm: Cvm,
    pub ui_on_outcome: Option<UiRequest>,
    pub ui_on_restart: Option<UiRequest>,
    /// Online Response Data expected: the kernel wants the issuer's answer (restart at B/D).
    pub online_response_expected: bool,
    /// Data record (TLV): what authorization / clearing needs (Book A §6.2.5).
    pub data_record: Option<Vec<u8>>,
    /// Discretionary data (TLV), e.g. 9F5D available offline spending amount.
    pub discretionary_data: Option<Vec<u8>>,
    pub alternate_interface: Option<AltInterface>,
    pub receipt: bool,
    /// Field off for this hold time before a restart (ms).
    pub field_off_ms: Option<u32>,
    pub removal_timeout_ms: u32,
    /// Why this outcome, in words a cashier or a log reader can act on.
    pub reason: String,
}

impl Outcome {
    pub fn new(status: Status, reason: impl Into<String>) -> Self {
        Outcome {
            status,
            start: None,
            cvm: Cvm::NotApplicable,
            ui_on_outcome: None,
            ui_on_restart: None,
            online_response_expected: false,
            data_record: None,
            discretionary_data: None,
            alternate_interface: None,
            receipt: false,
            field_off_ms: None,
            removal_timeout_ms: 0,
            reason: reason.into(),
        }
    }
    pub fn ui(mut self, ui: UiRequest) -> Self {
        self.ui_on_outcome = Some(ui);
        self
    }

    /// Book B §3.3.2.7 / C-3 §5.2: End Application, "Insert, swipe or try another card".
    pub fn end_application(reason: impl Into<String>) -> Self {
        Outcome::new(Status::EndApplication, reason).ui(UiRequest::new(MessageId::TryAnotherCard, UiStatus::ProcessingError))
    }

    /// Book B §3.5.1.3 with the UI of a communication error: present the card again (Start B).
    pub fn try_again(reason: impl Into<String>) -> Self {
        let mut o = Outcome::new(Status::TryAgain, reason).ui(UiRequest::new(MessageId::PresentCardAgain, UiStatus::ProcessingError));
        o.start = Some(Start::B);
        o.ui_on_restart = Some(UiRequest::new(MessageId::PresentCardAgain, UiStatus::ReadyToRead));
        o
    }

    /// Mobile "See Phone" (C-3 §5.2.2.2 via [MHN] `try_again`): Try Again at Start B, message 0x20
    /// held 1.3 s, field off 1.3 s, then "Present card again" (0x21) on restart: a restart asks
    /// for the card again, Book B §3.2.1.2 ([MHN] sends 0x15 here; the two-tap flow is a second
    /// presentation of the same card, so 0x21 — unverified against Book A).
    pub fn see_phone() -> Self {
        let mut o = Outcome::new(Status::TryAgain, "wallet asks the holder to verify on the phone (CDCVM)").ui(UiRequest::new(
            MessageId::SeePhone,
            UiStatus::ProcessingError,
        )
        .hold(1300));
        o.start = Some(Start::B);
        o.field_off_ms = Some(1300);
        o.ui_on_restart = Some(UiRequest::new(MessageId::PresentCardAgain, UiStatus::ReadyToRead));
        o
    }

    /// Whether this is the wallet's See Phone request.
    pub fn is_see_phone(&self) -> bool {
        self.status == Status::TryAgain && self.ui_on_outcome.as_ref().is_some_and(|u| u.message == MessageId::SeePhone)
    }
}

//! ISO 8583 codec (work in progress: issue 3).

//! REFER (TDR-XFR-02).

use std::time::Instant;

use super::B2bua;
use super::call::{CallKey, LegId};
use crate::sip::message::Request;
use crate::sip::transaction::TxId;

impl B2bua {
    pub(super) fn on_refer(
        &mut self,
        _key: CallKey,
        _leg: LegId,
        tx: TxId,
        req: Request,
        _now: Instant,
    ) {
        self.reject(tx, &req, 501, "Not Implemented");
    }
}

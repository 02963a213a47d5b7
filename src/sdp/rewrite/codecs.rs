//! Which payload types go into an offer or answer: the codec policy (TDR-MED-05/06/07).

use crate::sdp::model::{Attribute, Codec, MediaDescription};

use super::RewriteError;

/// Codec choice for offers the SBC sends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodecPolicy {
    /// Encoding names in preferred order, matched case-insensitively against the rtpmap (or
    /// RFC 3551 static) name: `PCMU`, or `SILK/16000` to name one clock rate. Empty keeps every
    /// codec in the peer's order. TDR-MED-05: leaving SILK out means no SILK transcoding.
    /// Shared: every call of a trunk uses the same list.
    pub allow: std::sync::Arc<[String]>,
    /// Keep `telephone-event` (RFC 4733); always true in practice, TDR-MED-06.
    pub keep_telephone_event: bool,
    /// Keep comfort noise `CN` (RFC 3389), TDR-MED-07.
    pub keep_cn: bool,
}

/// Codecs a delayed-offer trunk call gets toward Teams when the policy names none.
const DEFAULT_BUILT_OFFER: [&str; 3] = ["PCMU", "PCMA", "G722"];
/// The payload types the SBC uses in an offer it builds itself (RFC 3551 static; 101 is the
/// de facto telephone-event number, also in Teams traces).
const BUILT_CODECS: [(&str, u8, u32); 6] = [
    ("PCMU", 0, 8000),
    ("GSM", 3, 8000),
    ("G723", 4, 8000),
    ("PCMA", 8, 8000),
    ("G722", 9, 8000),
    ("G729", 18, 8000),
];
const TELEPHONE_EVENT_PT: u8 = 101;
const CN_PT: u8 = 13;

impl CodecPolicy {
    /// Rank of `codec` in `allow`, or `None` if the policy leaves it out.
    fn rank(&self, codec: &Codec) -> Option<usize> {
        if self.allow.is_empty() {
            return Some(0);
        }
        self.allow
            .iter()
            .position(|wanted| matches_name(wanted, codec))
    }

    fn keeps_special(&self, codec: &Codec) -> Option<bool> {
        if codec.is_telephone_event() {
            Some(self.keep_telephone_event)
        } else if codec.is_comfort_noise() {
            Some(self.keep_cn)
        } else {
            None
        }
    }
}

fn matches_name(wanted: &str, codec: &Codec) -> bool {
    match wanted.split_once('/') {
        Some((name, rate)) => {
            name.eq_ignore_ascii_case(&codec.encoding) && rate.parse() == Ok(codec.clock_rate)
        }
        None => wanted.eq_ignore_ascii_case(&codec.encoding),
    }
}

/// The formats of an offered m-line that the SBC passes on: voice codecs the policy allows, in
/// the policy's order, then telephone-event and CN in the offer's order. Without a voice codec
/// the offer cannot be accepted (TDR-MED-05: 488).
pub(super) fn select_formats(
    offer: &MediaDescription,
    policy: &CodecPolicy,
) -> Result<Vec<String>, RewriteError> {
    let mut voice: Vec<(usize, &String)> = Vec::new();
    let mut special: Vec<&String> = Vec::new();
    for format in &offer.formats {
        match offer.codec(format) {
            Some(codec) => match policy.keeps_special(&codec) {
                Some(true) => special.push(format),
                Some(false) => {}
                None => {
                    if let Some(rank) = policy.rank(&codec) {
                        voice.push((rank, format));
                    }
                }
            },
            // A dynamic type without rtpmap cannot be named, so only "keep all" keeps it.
            None if policy.allow.is_empty() => voice.push((0, format)),
            None => {}
        }
    }
    if voice.is_empty() {
        return Err(RewriteError::NoCommonCodec);
    }
    voice.sort_by_key(|(rank, _)| *rank);
    Ok(voice
        .into_iter()
        .map(|(_, f)| f)
        .chain(special)
        .cloned()
        .collect())
}

/// The formats of an answer that the offer really contained (same payload type, same codec).
/// A peer that answers with something never offered is not followed: the relay does not
/// renumber payload types.
pub(super) fn answered_formats(
    answer: &MediaDescription,
    offer: &MediaDescription,
) -> Result<Vec<String>, RewriteError> {
    let kept: Vec<String> = answer
        .formats
        .iter()
        .filter(|format| {
            offer.formats.contains(format)
                && match (answer.codec(format), offer.codec(format)) {
                    (Some(a), Some(o)) => a.same_codec(&o),
                    _ => true,
                }
        })
        .cloned()
        .collect();
    let has_voice = kept.iter().any(|f| {
        answer
            .codec(f)
            .is_none_or(|c| !c.is_telephone_event() && !c.is_comfort_noise())
    });
    if !has_voice {
        return Err(RewriteError::NoCommonCodec);
    }
    Ok(kept)
}

/// Formats and attributes for an offer the SBC builds from policy alone (delayed-offer trunk
/// toward Teams, TDR-INV-05). Names without a static payload type are skipped.
pub(super) fn built_offer(
    policy: &CodecPolicy,
) -> Result<(Vec<String>, Vec<Attribute>), RewriteError> {
    let wanted: Vec<&str> = if policy.allow.is_empty() {
        DEFAULT_BUILT_OFFER.to_vec()
    } else {
        policy.allow.iter().map(String::as_str).collect()
    };
    let mut formats = Vec::new();
    let mut attributes = Vec::new();
    for name in wanted {
        let found = BUILT_CODECS.iter().find(|(codec, _, rate)| {
            let candidate = Codec {
                payload_type: 0,
                encoding: (*codec).to_owned(),
                clock_rate: *rate,
                channels: None,
            };
            matches_name(name, &candidate)
        });
        if let Some((codec, pt, rate)) = found {
            let pt = pt.to_string();
            if !formats.contains(&pt) {
                attributes.push(Attribute::with_value(
                    "rtpmap",
                    format!("{pt} {codec}/{rate}"),
                ));
                formats.push(pt);
            }
        }
    }
    if formats.is_empty() {
        return Err(RewriteError::NoCommonCodec);
    }
    if policy.keep_telephone_event {
        let pt = TELEPHONE_EVENT_PT;
        formats.push(pt.to_string());
        attributes.push(Attribute::with_value(
            "rtpmap",
            format!("{pt} telephone-event/8000"),
        ));
        attributes.push(Attribute::with_value("fmtp", format!("{pt} 0-16")));
    }
    if policy.keep_cn {
        formats.push(CN_PT.to_string());
        attributes.push(Attribute::with_value("rtpmap", format!("{CN_PT} CN/8000")));
    }
    attributes.push(Attribute::with_value("ptime", "20"));
    Ok((formats, attributes))
}

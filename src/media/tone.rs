//! Ringback toward the trunk while Teams transfers the call (TDR-XFR-03): a G.711 RTP
//! stream made by the SBC, tone bursts with silence between them, so the held party hears
//! the new party ringing and the trunk keeps receiving media.

use serde::Deserialize;

/// Samples per second of G.711 and samples per 20 ms packet.
const RATE: u32 = 8000;
pub(crate) const SAMPLES_PER_PACKET: usize = 160;
const RTP_HEADER_LEN: usize = 12;
/// An RTP packet of ringback: header and 20 ms of G.711.
pub(crate) const PACKET_LEN: usize = RTP_HEADER_LEN + SAMPLES_PER_PACKET;
/// Peak of each tone component, about -20 dBFS: a clear ringback, well below speech peaks.
const AMPLITUDE: f32 = 3000.0;

/// Which ringing tone the SBC plays (`[media] ringback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RingbackTone {
    /// ITU-T E.180 / ETSI: 425 Hz, 1 s on, 4 s off.
    #[default]
    Eu,
    /// North America (ANSI T1.401): 440 + 480 Hz, 2 s on, 4 s off.
    Na,
    /// No ringback: the held party hears silence during a transfer.
    Off,
}

impl RingbackTone {
    /// Frequencies (Hz; 0 = none), tone and cadence lengths in samples.
    fn shape(self) -> Option<([u32; 2], u32, u32)> {
        match self {
            RingbackTone::Eu => Some(([425, 0], RATE, 5 * RATE)),
            RingbackTone::Na => Some(([440, 480], 2 * RATE, 6 * RATE)),
            RingbackTone::Off => None,
        }
    }
}

/// The G.711 law of the trunk leg's codec (static payload types, RFC 3551 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    Ulaw,
    Alaw,
}

impl G711 {
    /// The law of a static payload type, if it is one.
    pub fn from_payload_type(pt: u8) -> Option<G711> {
        match pt {
            0 => Some(G711::Ulaw),
            8 => Some(G711::Alaw),
            _ => None,
        }
    }

    pub fn payload_type(self) -> u8 {
        match self {
            G711::Ulaw => 0,
            G711::Alaw => 8,
        }
    }

    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711::Ulaw => ulaw(sample),
            G711::Alaw => alaw(sample),
        }
    }
}

/// G.711 μ-law (ITU-T G.711 Table 2a, with the usual 0x84 bias).
fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    // s >= 0x84, so s >> 7 >= 1 and its highest bit is the segment (0..=7).
    let exponent = ((s >> 7) as u32).ilog2().min(7);
    let mantissa = ((s >> (exponent + 3)) & 0x0f) as u8;
    !(sign | ((exponent as u8) << 4) | mantissa)
}

/// G.711 A-law (ITU-T G.711 Table 1a, even bits inverted).
fn alaw(sample: i16) -> u8 {
    let mut s = i32::from(sample) >> 3;
    let mask = if s >= 0 {
        0xd5
    } else {
        s = -s - 1;
        0x55
    };
    // Segment ends of the 13-bit magnitude.
    const ENDS: [i32; 8] = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let Some(seg) = ENDS.iter().position(|&end| s <= end) else {
        return 0x7f ^ mask;
    };
    let quant = (if seg < 2 { s >> 1 } else { s >> seg }) & 0x0f;
    (((seg as i32) << 4) | quant) as u8 ^ mask
}

/// Starts or stops ringback on a session. A start names the law (from the trunk's SDP); the
/// media plane adds the rest (the tone from the config, stream identifiers random per
/// RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingbackUpdate {
    /// Toward the trunk, as RTP: its party waits for a Teams transfer (TDR-XFR-03).
    Start(G711),
    /// Toward Teams, as SRTP with the call's key: the Teams caller waits for a trunk
    /// transfer (TDR-XFR-04).
    StartTowardTeams(G711),
    Stop,
}

/// Which leg a ringback stream is played to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingbackTo {
    Trunk,
    Teams,
}

/// One ringback stream: its own SSRC, sequence numbers and timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ringback {
    frequencies: [u32; 2],
    on: u32,
    period: u32,
    law: G711,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    /// Position in the cadence, in samples.
    position: u32,
    first: bool,
}

impl Ringback {
    /// None for [`RingbackTone::Off`].
    pub fn new(tone: RingbackTone, law: G711, ssrc: u32, seq: u16, timestamp: u32) -> Option<Self> {
        let (frequencies, on, period) = tone.shape()?;
        Some(Ringback {
            frequencies,
            on,
            period,
            law,
            ssrc,
            seq,
            timestamp,
            position: 0,
            first: true,
        })
    }

    /// Writes the next 20 ms packet into `buf` (at least [`PACKET_LEN`] bytes) and returns
    /// its length, or None if `buf` is too short.
    pub fn next_packet(&mut self, buf: &mut [u8]) -> Option<usize> {
        let packet = buf.get_mut(..PACKET_LEN)?;
        // RFC 3550 §5.1: version 2; the marker opens the stream (a talkspurt).
        packet[0] = 0x80;
        packet[1] = self.law.payload_type() | if self.first { 0x80 } else { 0 };
        packet[2..4].copy_from_slice(&self.seq.to_be_bytes());
        packet[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        packet[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        for out in &mut packet[RTP_HEADER_LEN..] {
            *out = self.law.encode(self.sample());
            self.position = (self.position + 1) % self.period;
        }
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(SAMPLES_PER_PACKET as u32);
        Some(PACKET_LEN)
    }

    fn sample(&self) -> i16 {
        if self.position >= self.on {
            return 0;
        }
        let value: f32 = self
            .frequencies
            .iter()
            .filter(|&&f| f != 0)
            .map(|&f| {
                // The phase from whole cycles removed first keeps f32 precise.
                let phase = (f * self.position % RATE) as f32 / RATE as f32;
                AMPLITUDE * (std::f32::consts::TAU * phase).sin()
            })
            .sum();
        value as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// G.711 decoding (the inverse tables), to check the encoders against.
    fn ulaw_decode(u: u8) -> i32 {
        let u = !u;
        let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
        if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }
    }

    fn alaw_decode(a: u8) -> i32 {
        let a = a ^ 0x55;
        let seg = i32::from((a & 0x70) >> 4);
        let mut t = i32::from(a & 0x0f) << 4;
        t = match seg {
            0 => t + 8,
            1 => t + 0x108,
            _ => (t + 0x108) << (seg - 1),
        };
        if a & 0x80 != 0 { t } else { -t }
    }

    #[test]
    fn g711_codes_of_silence_and_full_scale() {
        assert_eq!(ulaw(0), 0xff);
        assert_eq!(ulaw(i16::MAX), 0x80);
        assert_eq!(ulaw(i16::MIN), 0x00);
        assert_eq!(alaw(0), 0xd5);
        assert_eq!(alaw(i16::MAX), 0xaa);
        assert_eq!(alaw(i16::MIN), 0x2a);
    }

    #[test]
    fn g711_decodes_back_within_its_quantization_step() {
        for s in (-32000i32..32000).step_by(37) {
            let sample = s as i16;
            // Each segment doubles the step; 1/16 of the magnitude bounds it, plus the
            // smallest step near zero.
            let bound = s.abs() / 16 + 16;
            let u = ulaw_decode(ulaw(sample));
            assert!((u - s).abs() <= bound, "μ-law {s} -> {u}");
            let a = alaw_decode(alaw(sample));
            assert!((a - s).abs() <= bound, "A-law {s} -> {a}");
        }
    }

    #[test]
    fn ringback_rtp_stream_counts_up_and_follows_the_cadence() {
        let mut tone = Ringback::new(RingbackTone::Eu, G711::Alaw, 0x1234_5678, 65535, 100)
            .expect("eu is a tone");
        let mut buf = [0u8; PACKET_LEN + 4];
        let mut packets = Vec::new();
        // 5 s: one cadence (1 s tone, 4 s silence) of 20 ms packets.
        for _ in 0..250 {
            let len = tone.next_packet(&mut buf).expect("room");
            assert_eq!(len, PACKET_LEN);
            packets.push(buf[..len].to_vec());
        }
        let first = &packets[0];
        assert_eq!(first[0], 0x80);
        assert_eq!(first[1], 0x80 | 8, "marker on the first packet, PCMA");
        assert_eq!(packets[1][1], 8);
        assert_eq!(u16::from_be_bytes([first[2], first[3]]), 65535);
        assert_eq!(u16::from_be_bytes([packets[1][2], packets[1][3]]), 0);
        assert_eq!(
            u32::from_be_bytes([packets[1][4], packets[1][5], packets[1][6], packets[1][7]]),
            260
        );
        assert_eq!(&first[8..12], &0x1234_5678u32.to_be_bytes());
        let silent = |p: &Vec<u8>| p[RTP_HEADER_LEN..].iter().all(|&b| b == alaw(0));
        // The first second is tone, the next four silence, then the tone again.
        assert!(packets[..50].iter().all(|p| !silent(p)));
        assert!(packets[50..250].iter().all(silent));
        let next = tone.next_packet(&mut buf).expect("room");
        assert!(!silent(&buf[..next].to_vec()));
    }

    #[test]
    fn the_tone_has_the_configured_frequency() {
        // 425 Hz crosses zero 850 times a second.
        let mut tone = Ringback::new(RingbackTone::Eu, G711::Ulaw, 1, 0, 0).expect("tone");
        let mut buf = [0u8; PACKET_LEN];
        let mut samples = Vec::new();
        for _ in 0..50 {
            tone.next_packet(&mut buf).expect("room");
            samples.extend(buf[RTP_HEADER_LEN..].iter().map(|&u| ulaw_decode(u)));
        }
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!(
            (840..=860).contains(&crossings),
            "{crossings} zero crossings"
        );
    }

    #[test]
    fn off_makes_no_generator_and_a_short_buffer_no_packet() {
        assert!(Ringback::new(RingbackTone::Off, G711::Ulaw, 1, 0, 0).is_none());
        let mut tone = Ringback::new(RingbackTone::Na, G711::Ulaw, 1, 0, 0).expect("tone");
        assert_eq!(tone.next_packet(&mut [0u8; PACKET_LEN - 1]), None);
    }
}

//! Where a check's time goes: DNS, connect and TLS (timed as the connection opens — see
//! `transport`), first byte and body (timed by the sender). A reused connection reports no DNS,
//! no connect and no TLS.

use std::time::Duration;

use serde::Serialize;

/// The phases of one HTTP check (`lastCheck.phases`, in milliseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// Resolving the host name (0: an address, or a reused connection).
    pub dns: Duration,
    /// Opening the TCP connection (0: reused).
    pub connect: Duration,
    /// The TLS handshake, for HTTPS (0: plain HTTP, or reused).
    pub tls: Duration,
    /// From the request sent to the answer's headers: the server's time.
    pub first_byte: Duration,
    /// Reading the answer's body.
    pub body: Duration,
}

impl Phases {
    /// The phases' names, in order, as the metric labels them.
    pub const LABELS: [&'static str; 5] = ["dns", "connect", "tls", "first_byte", "body"];

    /// Each phase's duration, in the order of [`LABELS`](Self::LABELS).
    pub fn durations(&self) -> [Duration; 5] {
        [self.dns, self.connect, self.tls, self.first_byte, self.body]
    }

    /// `dns 2, connect 40, tls 310, first byte 1100, body 3` (milliseconds), for log lines.
    pub fn words(&self) -> String {
        format!(
            "dns {}, connect {}, tls {}, first byte {}, body {}",
            self.dns.as_millis(),
            self.connect.as_millis(),
            self.tls.as_millis(),
            self.first_byte.as_millis(),
            self.body.as_millis()
        )
    }
}

impl Serialize for Phases {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("Phases", 5)?;
        let ms = |duration: Duration| crate::text::log_ms(duration.as_secs_f64() * 1000.0);
        out.serialize_field("dnsMs", &ms(self.dns))?;
        out.serialize_field("connectMs", &ms(self.connect))?;
        out.serialize_field("tlsMs", &ms(self.tls))?;
        out.serialize_field("firstByteMs", &ms(self.first_byte))?;
        out.serialize_field("bodyMs", &ms(self.body))?;
        out.end()
    }
}

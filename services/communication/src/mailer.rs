//! Email delivery: SMTP through lettre when `SMTP_URL` is set, otherwise a local sink that
//! writes one `.eml` file per message into `EMAIL_SINK_DIR`, so a laptop run needs nothing.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One message ready to go. `message_id` is without angle brackets (`<ulid>@<domain>`).
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// A marketing email's one-click unsubscribe URL: sent as `List-Unsubscribe: <url>` with
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058, required by the large
    /// mailbox providers for bulk senders).
    pub list_unsubscribe: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
    #[error("cannot write to the mail sink: {0}")]
    Sink(#[from] std::io::Error),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Hands the message over; `Ok` once the SMTP server (or the sink) accepted it.
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}

/// Builds the MIME message (multipart/alternative when there is an HTML body).
pub fn build_message(from: &Mailbox, email: &OutgoingEmail) -> Result<Message, MailError> {
    let to: Mailbox = email.to.parse().map_err(|_| MailError::Address(email.to.clone()))?;
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{}>", email.message_id)));
    let builder = match &email.list_unsubscribe {
        Some(url) => builder
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), format!("<{url}>")))
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click".to_owned())),
        None => builder,
    };
    let built = match &email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text.clone(), html.clone())),
        None => builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone())),
    };
    built.map_err(|e| MailError::Build(e.to_string()))
}

/// `SMTP_URL` (e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@host`,
/// `smtp://host:587?tls=required`), parsed once at start. It may hold a password: its
/// `Debug` shows scheme and host only.
#[derive(Clone)]
pub struct SmtpUrl {
    shown: String,
    transport: AsyncSmtpTransportBuilder,
}

impl SmtpUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| format!("not a valid SMTP URL ({e})"))?;
        let (scheme, rest) = url.split_once("://").unwrap_or(("smtp", url));
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = host.split(['/', '?']).next().unwrap_or_default();
        Ok(Self { shown: format!("{scheme}://{host}"), transport })
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpUrl({})", self.shown)
    }
}

/// SMTP delivery to [`SmtpUrl`].
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &SmtpUrl, from: Mailbox) -> Self {
        let transport = url.transport.clone().timeout(Some(Duration::from_secs(15))).build();
        Self { transport, from }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let message = build_message(&self.from, email)?;
        self.transport.send(message).await.map_err(|e| MailError::Smtp(e.to_string()))?;
        Ok(())
    }
}

/// Writes `<message id>.eml` files into a folder (atomically: temp file, then rename).
pub struct FileSink {
    dir: PathBuf,
    from: Mailbox,
}

impl FileSink {
    pub fn new(dir: impl Into<PathBuf>, from: Mailbox) -> Self {
        Self { dir: dir.into(), from }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for FileSink {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let message = build_message(&self.from, email)?;
        tokio::fs::create_dir_all(&self.dir).await?;
        let name: String = email.message_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, message.formatted()).await?;
        tokio::fs::rename(&tmp, self.dir.join(format!("{name}.eml"))).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sink_writes_one_eml_per_message() {
        let dir = std::env::temp_dir().join(format!("crm-mail-{}", ulid::Ulid::generate()));
        let sink = FileSink::new(&dir, "CRM <no-reply@crm.localhost>".parse().unwrap());
        let email = OutgoingEmail {
            message_id: "01ABC@crm.localhost".into(),
            to: "ann@example.com".into(),
            subject: "Hello Ann".into(),
            text: "Hi".into(),
            html: Some("<p>Hi</p>".into()),
            list_unsubscribe: Some("https://crm.example.com/api/v1/unsubscribe/TOKEN".into()),
        };
        sink.send(&email).await.unwrap();
        let eml = std::fs::read_to_string(dir.join("01ABC_crm.localhost.eml")).unwrap();
        assert!(eml.contains("Subject: Hello Ann"), "{eml}");
        assert!(eml.contains("Message-ID: <01ABC@crm.localhost>"), "{eml}");
        assert!(eml.contains("multipart/alternative"), "{eml}");
        assert!(eml.contains("List-Unsubscribe: <https://crm.example.com/api/v1/unsubscribe/TOKEN>"), "{eml}");
        assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{eml}");
        let bad = OutgoingEmail { to: "not an address".into(), ..email };
        assert!(matches!(sink.send(&bad).await, Err(MailError::Address(_))));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn smtp_urls_are_checked_and_never_show_their_password() {
        let url = SmtpUrl::parse("smtps://user:secret@smtp.example.com:465?tls=required").unwrap();
        assert_eq!(format!("{url:?}"), "SmtpUrl(smtps://smtp.example.com:465)");
        assert!(SmtpUrl::parse("http://example.com").is_err());
    }
}

//! Server-Sent Events, as the WHATWG HTML standard defines the stream:
//! bytes arrive in arbitrary pieces, lines end in `\n`, `\r\n` or `\r`, a
//! blank line ends an event, `data:` lines of one event are joined with
//! `\n`, lines starting with `:` are comments (keep-alives), and one space
//! after the colon is dropped. Only what OpenAI-compatible servers use is
//! kept (`event` and `data`); `id` and `retry` are read and ignored.
//!
//! The decoder holds at most one unfinished line and one unfinished event,
//! and refuses either beyond a limit, so a server that never ends a line
//! cannot make the agent buffer without bound. The events before the
//! refusal are delivered first, so what a reader sees does not depend on
//! how the network cut the stream (the fuzz target `model_streams` checks
//! that every cut gives the same events and errors).

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field; empty for the default ("message").
    pub name: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Why a stream cannot be read as events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// A line or an event grew past the limit without ending.
    TooLong(usize),
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong(limit) => write!(
                f,
                "the server sent an event longer than {limit} bytes without ending it"
            ),
        }
    }
}

/// Cuts a byte stream into events.
#[derive(Debug)]
pub struct Decoder {
    line: Vec<u8>,
    /// The previous piece ended in `\r`: a `\n` first in the next piece
    /// belongs to that line end.
    after_cr: bool,
    event: Event,
    has_data: bool,
    limit: usize,
    /// Why the stream was refused; every later call reports it.
    failed: Option<SseError>,
}

impl Decoder {
    /// A decoder refusing lines or events longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            event: Event::default(),
            has_data: false,
            limit,
            failed: None,
        }
    }

    /// Feed the next piece of the stream; the events it completes. When
    /// the piece goes over the limit, the events it completed before that
    /// are returned, and the refusal comes with the next call (or
    /// [`Decoder::finish`]).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let mut events = Vec::new();
        match self.feed_into(bytes, &mut events) {
            Ok(()) => Ok(events),
            Err(err) => {
                self.failed = Some(err.clone());
                if events.is_empty() {
                    Err(err)
                } else {
                    Ok(events)
                }
            }
        }
    }

    fn feed_into(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> Result<(), SseError> {
        for &byte in bytes {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_ended(&line)? {
                        events.push(event);
                    }
                }
                _ => {
                    if self.line.len() >= self.limit {
                        return Err(SseError::TooLong(self.limit));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    /// The stream ended: an event not closed by a blank line is dropped,
    /// as the standard says (a server cut off mid-event sent nothing
    /// whole). The refusal of a stream that went over the limit, if it
    /// was not reported yet.
    pub fn finish(&mut self) -> Result<(), SseError> {
        self.line.clear();
        self.event = Event::default();
        self.has_data = false;
        match self.failed.take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn line_ended(&mut self, line: &[u8]) -> Result<Option<Event>, SseError> {
        if line.is_empty() {
            if !self.has_data {
                self.event = Event::default();
                return Ok(None);
            }
            self.has_data = false;
            return Ok(Some(std::mem::take(&mut self.event)));
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.has_data = true;
                if self.event.data.len() > self.limit {
                    return Err(SseError::TooLong(self.limit));
                }
            }
            "event" => value.clone_into(&mut self.event.name),
            _ => {}
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(decoder: &mut Decoder, pieces: &[&[u8]]) -> Vec<Event> {
        pieces
            .iter()
            .flat_map(|piece| decoder.feed(piece).unwrap_or_default())
            .collect()
    }

    fn data(text: &str) -> Event {
        Event {
            name: String::new(),
            data: text.to_owned(),
        }
    }

    #[test]
    fn events_survive_any_split_and_any_line_end() {
        let stream =
            b"data: {\"a\":1}\n\n: keep-alive\r\n\r\ndata: two\r\ndata: lines\r\rdata: [DONE]\n\n";
        let expected = vec![data("{\"a\":1}"), data("two\nlines"), data("[DONE]")];
        for cut in 0..stream.len() {
            let mut decoder = Decoder::new(1024);
            let (head, tail) = stream.split_at(cut);
            assert_eq!(all(&mut decoder, &[head, tail]), expected, "cut at {cut}");
        }
        let mut bytewise = Decoder::new(1024);
        let pieces: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(all(&mut bytewise, &pieces), expected);
    }

    #[test]
    fn named_events_fields_without_space_and_unknown_fields() {
        let mut decoder = Decoder::new(1024);
        let events = all(
            &mut decoder,
            &[b"event: error\ndata:{\"x\":1}\nid: 7\nretry: 10\nbogus\n\n"],
        );
        assert_eq!(
            events,
            vec![Event {
                name: "error".to_owned(),
                data: "{\"x\":1}".to_owned()
            }]
        );
    }

    #[test]
    fn an_event_cut_off_by_the_end_of_the_stream_is_dropped() {
        let mut decoder = Decoder::new(1024);
        assert_eq!(
            all(&mut decoder, &[b"data: whole\n\ndata: half"]),
            vec![data("whole")]
        );
        assert_eq!(decoder.finish(), Ok(()));
        assert_eq!(all(&mut decoder, &[b"\n\n"]), vec![]);
    }

    /// Found by the fuzz target `model_streams`: events completed in the
    /// same piece as an over-long line were lost, so a reader got other
    /// events (and another error) depending on how the stream was cut.
    #[test]
    fn events_before_a_refusal_come_first_whatever_the_cut() {
        let stream = b"data: one\n\ndata: 123456789012345678\n\n";
        let mut whole = Decoder::new(16);
        assert_eq!(whole.feed(stream), Ok(vec![data("one")]));
        assert_eq!(whole.feed(b"more"), Err(SseError::TooLong(16)));
        let mut ended = Decoder::new(16);
        assert_eq!(ended.feed(stream), Ok(vec![data("one")]));
        assert_eq!(ended.finish(), Err(SseError::TooLong(16)));
        let mut bytewise = Decoder::new(16);
        let mut events = Vec::new();
        let mut error = None;
        for byte in stream.chunks(1) {
            match bytewise.feed(byte) {
                Ok(more) => events.extend(more),
                Err(err) => {
                    error = Some(err);
                    break;
                }
            }
        }
        assert_eq!(
            (events, error),
            (vec![data("one")], Some(SseError::TooLong(16)))
        );
    }

    #[test]
    fn endless_lines_and_events_are_refused() {
        let mut decoder = Decoder::new(16);
        assert_eq!(decoder.feed(&[b'x'; 17]).err(), Some(SseError::TooLong(16)));
        let mut decoder = Decoder::new(16);
        let many = b"data: 123456789\ndata: 123456789\n";
        assert_eq!(decoder.feed(many).err(), Some(SseError::TooLong(16)));
    }
}

//! Follows a chunked request body through the byte stream to find where
//! it ends and the next request head starts.
//!
//! The grammar is hyper's own decoder's, state for state, so the two never
//! disagree about the end of a body; this side also refuses a body whose
//! announced chunks add up to more than the limit, before the data comes,
//! a bare LF in the trailer section (which hyper's decoder lets through),
//! and chunk extensions and trailers that together with the head weigh
//! more than the head limit.

use crate::head::Reject;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Size,
    SizeLws,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    EndCr,
    EndLf,
    Trailer,
    TrailerLf,
    Done,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Every byte given was consumed and the body goes on.
    More,
    /// The body ended after the consumed bytes.
    Done,
    /// The body is refused at the byte after the consumed ones.
    Refuse(Reject),
}

#[derive(Debug)]
pub struct Chunked {
    state: State,
    size: u64,
    total: u64,
    /// What extensions and trailer lines may still take of the head limit.
    meta_left: usize,
}

impl Chunked {
    /// `meta_left` is the head limit less the head's own size.
    pub fn new(meta_left: usize) -> Self {
        Chunked {
            state: State::Start,
            size: 0,
            total: 0,
            meta_left,
        }
    }

    /// Consumes a prefix of `data`; returns its length and what follows.
    pub fn advance(&mut self, data: &[u8], max_body: u64) -> (usize, Step) {
        let mut i = 0;
        while i < data.len() {
            if self.state == State::Data {
                let n = usize::try_from(self.size)
                    .unwrap_or(usize::MAX)
                    .min(data.len() - i);
                i += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = data[i];
            let meta = match self.state {
                State::Size => hex(b).is_none() && b != b'\r',
                State::SizeLws | State::Extension => b != b'\r',
                State::Trailer | State::TrailerLf => true,
                State::EndCr => b != b'\r',
                _ => false,
            };
            if meta {
                if self.meta_left == 0 {
                    return (i, Step::Refuse(Reject::HeadTooLarge));
                }
                self.meta_left -= 1;
            }
            let next = match self.state {
                State::Start => match hex(b) {
                    Some(d) => {
                        self.size = u64::from(d);
                        State::Size
                    }
                    None => return (i, Step::Refuse(Reject::BadChunk)),
                },
                State::Size => match (b, hex(b)) {
                    (_, Some(d)) => {
                        if self.size >> 60 != 0 {
                            return (i, Step::Refuse(Reject::BadChunk));
                        }
                        self.size = self.size << 4 | u64::from(d);
                        State::Size
                    }
                    (b'\t' | b' ', _) => State::SizeLws,
                    (b';', _) => State::Extension,
                    (b'\r', _) => State::SizeLf,
                    _ => return (i, Step::Refuse(Reject::BadChunk)),
                },
                State::SizeLws => match b {
                    b'\t' | b' ' => State::SizeLws,
                    b';' => State::Extension,
                    b'\r' => State::SizeLf,
                    _ => return (i, Step::Refuse(Reject::BadChunk)),
                },
                State::Extension => match b {
                    b'\r' => State::SizeLf,
                    b'\n' => return (i, Step::Refuse(Reject::BadChunk)),
                    _ => State::Extension,
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return (i, Step::Refuse(Reject::BadChunk));
                    }
                    self.total = self.total.saturating_add(self.size);
                    if self.total > max_body {
                        return (i, Step::Refuse(Reject::BodyTooLarge));
                    }
                    if self.size == 0 {
                        State::EndCr
                    } else {
                        State::Data
                    }
                }
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    _ => return (i, Step::Refuse(Reject::BadChunk)),
                },
                State::DataLf => match b {
                    b'\n' => State::Start,
                    _ => return (i, Step::Refuse(Reject::BadChunk)),
                },
                State::EndCr => match b {
                    b'\r' => State::EndLf,
                    b'\n' => return (i, Step::Refuse(Reject::BadChunk)),
                    _ => State::Trailer,
                },
                State::EndLf => match b {
                    b'\n' => State::Done,
                    _ => return (i, Step::Refuse(Reject::BadChunk)),
                },
                State::Trailer => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return (i, Step::Refuse(Reject::BadChunk)),
                    _ => State::Trailer,
                },
                State::TrailerLf => match b {
                    b'\n' => State::EndCr,
                    _ => return (i, Step::Refuse(Reject::BadChunk)),
                },
                State::Data | State::Done => unreachable_state(),
            };
            i += 1;
            self.state = next;
            if next == State::Done {
                return (i, Step::Done);
            }
        }
        (i, Step::More)
    }
}

// Data is handled before the match and Done returns; a state machine bug
// must not take the process down, so this only ends the loop's byte.
#[inline]
fn unreachable_state() -> State {
    State::Done
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(raw: &[u8], max: u64) -> (usize, Step) {
        Chunked::new(usize::MAX).advance(raw, max)
    }

    #[test]
    fn finds_the_end() {
        let cases: &[&[u8]] = &[
            b"0\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5;ext=1\r\nhello\r\n0 \r\n\r\n",
            b"A\r\n0123456789\r\n0\r\nX-T: t\r\nY: 2\r\n\r\n",
            b"3 ; a\r\nabc\r\n000\r\n\r\n",
        ];
        for raw in cases {
            let mut with_next = raw.to_vec();
            with_next.extend_from_slice(b"GET / HTTP/1.1\r\n");
            assert_eq!(whole(&with_next, 100), (raw.len(), Step::Done), "{raw:?}");
        }
    }

    #[test]
    fn any_split_gives_the_same_end() {
        let raw = b"5;x\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: 1\r\n\r\nNEXT";
        let end = raw.len() - 4;
        for split in 0..raw.len() {
            let mut c = Chunked::new(usize::MAX);
            let (n1, s1) = c.advance(&raw[..split], 1000);
            if split >= end {
                assert_eq!((n1, s1), (end, Step::Done));
                continue;
            }
            assert_eq!((n1, s1), (split, Step::More));
            assert_eq!(c.advance(&raw[split..], 1000), (end - split, Step::Done));
        }
    }

    #[test]
    fn refuses_what_hyper_refuses() {
        let cases: &[(&[u8], usize)] = &[
            (b"zz\r\n", 0),
            (b"5\nhello", 1),
            (b"-1\r\n", 0),
            (b"5 5\r\n", 2),
            (b"5;a\nb\r\n", 3),
            (b"3\r\nabcX", 6),
            (b"3\r\nabc\rX", 7),
            (b"0\r\n\rX", 4),
            (b"0\r\nT: 1\rX", 8),
            (b"0\r\nT: 1\nU: 2\r\n\r\n", 7),
            (b"0\r\n\n", 3),
            (b"11111111111111111\r\n", 16),
        ];
        for (raw, at) in cases {
            assert_eq!(
                whole(raw, u64::MAX),
                (*at, Step::Refuse(Reject::BadChunk)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn refuses_bodies_over_the_limit_at_the_size_line() {
        assert_eq!(
            whole(b"3e9\r\n", 1000),
            (4, Step::Refuse(Reject::BodyTooLarge))
        );
        let (n, step) = whole(b"3e8\r\n", 1000);
        assert_eq!((n, step), (5, Step::More));
        let body = [b"1f4\r\n".as_slice(), &[b'x'; 500], b"\r\n1f5\r\n"].concat();
        assert_eq!(
            whole(&body, 1000),
            (body.len() - 1, Step::Refuse(Reject::BodyTooLarge))
        );
    }

    #[test]
    fn extensions_and_trailers_count_against_the_head_limit() {
        // 10 bytes of extension (" ;ext=1234") and 7 of trailer
        // ("T: 12" and its CRLF): 17 in all.
        let raw = b"5 ;ext=1234\r\nhello\r\n0\r\nT: 12\r\n\r\n";
        assert_eq!(Chunked::new(17).advance(raw, 100), (raw.len(), Step::Done));
        let (at, step) = Chunked::new(16).advance(raw, 100);
        assert_eq!(
            (at, step),
            (raw.len() - 3, Step::Refuse(Reject::HeadTooLarge))
        );
        let (at, step) = Chunked::new(5).advance(raw, 100);
        assert_eq!((at, step), (6, Step::Refuse(Reject::HeadTooLarge)));
    }
}

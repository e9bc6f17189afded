//! Shuffle sharding: a flow's hash deals it a hand of `hand_size` distinct queues out of
//! `queues`, so two flows rarely share their whole hand and one heavy flow crowds only
//! the queues in its hand. The hand is a pure function of the hash (a mixed-radix
//! reading of it, choosing without replacement), so a flow lands in the same hand on
//! every request and on every core.

/// Deals hands of `hand_size` out of `deck_size` cards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dealer {
    deck_size: u32,
    hand_size: u32,
}

/// The most hash bits a hand may need (upstream's `MaxHashBits`).
const MAX_HASH_BITS: f64 = 60.0;

impl Dealer {
    /// A dealer, if the sizes make sense: 1 <= hand <= deck, and the hand needs no more
    /// than 60 bits of hash (upstream's validation of `handSize` against `queues`).
    pub fn new(deck_size: u32, hand_size: u32) -> Option<Dealer> {
        if hand_size == 0 || deck_size == 0 || hand_size > deck_size {
            return None;
        }
        let bits: f64 = (0..hand_size).map(|i| f64::from(deck_size - i).log2()).sum::<f64>().ceil();
        (bits <= MAX_HASH_BITS).then_some(Dealer { deck_size, hand_size })
    }

    pub fn hand_size(&self) -> u32 {
        self.hand_size
    }

    /// The hand of `hash`, in dealing order, into `out` (cleared first).
    pub fn deal(&self, mut hash: u64, out: &mut Vec<u32>) {
        out.clear();
        for i in 0..self.hand_size {
            let remaining = u64::from(self.deck_size - i);
            // The index among the cards not dealt yet...
            let mut card = (hash % remaining) as u32;
            hash /= remaining;
            // ...turned into a card: skip the dealt ones at or below it, in order.
            let mut dealt: Vec<u32> = out.clone();
            dealt.sort_unstable();
            for d in dealt {
                if d <= card {
                    card += 1;
                }
            }
            out.push(card);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_holds_distinct_cards_of_the_deck_and_depends_only_on_the_hash() {
        let d = Dealer::new(64, 8).unwrap();
        let mut hand = Vec::new();
        let mut again = Vec::new();
        for hash in [0, 1, 7, 12345, u64::MAX, 0xdead_beef_cafe] {
            d.deal(hash, &mut hand);
            assert_eq!(hand.len(), 8);
            let mut sorted = hand.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 8, "{hand:?}");
            assert!(hand.iter().all(|c| *c < 64));
            d.deal(hash, &mut again);
            assert_eq!(hand, again);
        }
    }

    #[test]
    fn every_card_is_dealt_about_equally_often() {
        let d = Dealer::new(16, 4).unwrap();
        let mut counts = [0u32; 16];
        let mut hand = Vec::new();
        for i in 0..16_000u64 {
            d.deal(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), &mut hand);
            for c in &hand {
                counts[*c as usize] += 1;
            }
        }
        // 64,000 cards over 16: 4,000 each, within 10%.
        assert!(counts.iter().all(|c| (3_600..=4_400).contains(c)), "{counts:?}");
    }

    #[test]
    fn impossible_hands_are_refused_as_upstream_validates() {
        assert!(Dealer::new(8, 9).is_none());
        assert!(Dealer::new(8, 0).is_none());
        assert!(Dealer::new(128, 6).is_some());
        assert!(Dealer::new(1 << 20, 4).is_none(), "needs 80 bits");
    }
}

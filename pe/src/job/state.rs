//! Where a job is. The journal records the state reached; a state ending in `-ing` means the
//! step had begun when the journal was last written (it may have been cut), and the resume runs
//! that step again (every step can be run again over its own partial work).

use serde::{Deserialize, Serialize};

use crate::step::Step;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The plan is made and recorded; nothing else is written.
    Planned,
    Carving,
    Carved,
    Capturing,
    /// Every capture is in the store.
    Captured,
    Verifying,
    /// Every capture was read back from the disk and checked: the last state before the first
    /// write outside the store.
    Verified,
    Staging,
    Staged,
    LayingDown,
    LaidDown,
    HandingOff,
    /// The new OS will restore on its first boot; the PE's part is over.
    HandedOff,
    Restoring,
    Restored,
    CleaningUp,
    /// Migrated: the restore and the cleanup are finished.
    Done,
    RollingBack,
    /// The old table is back; the old OS boots as before.
    RolledBack,
}

impl State {
    /// The step this state is in or about to start, in the PE or in the new OS.
    pub fn next_step(self) -> Option<Step> {
        use State::*;
        Some(match self {
            Planned | Carving => Step::Carve,
            Carved | Capturing => Step::Capture,
            Captured | Verifying => Step::Verify,
            Verified | Staging => Step::Stage,
            Staged | LayingDown => Step::LayDown,
            LaidDown | HandingOff => Step::HandOff,
            HandedOff | Restoring => Step::Restore,
            Restored | CleaningUp => Step::Cleanup,
            RollingBack => Step::Rollback,
            Done | RolledBack => return None,
        })
    }

    /// The state recorded when `step` begins.
    pub fn begins(step: Step) -> Option<State> {
        Some(match step {
            Step::Carve => State::Carving,
            Step::Capture => State::Capturing,
            Step::Verify => State::Verifying,
            Step::Stage => State::Staging,
            Step::LayDown => State::LayingDown,
            Step::HandOff => State::HandingOff,
            Step::Restore => State::Restoring,
            Step::Cleanup => State::CleaningUp,
            Step::Rollback => State::RollingBack,
            _ => return None,
        })
    }

    /// The state recorded when `step` has ended well.
    pub fn ends(step: Step) -> Option<State> {
        Some(match step {
            Step::Carve => State::Carved,
            Step::Capture => State::Captured,
            Step::Verify => State::Verified,
            Step::Stage => State::Staged,
            Step::LayDown => State::LaidDown,
            Step::HandOff => State::HandedOff,
            Step::Restore => State::Restored,
            Step::Cleanup => State::Done,
            Step::Rollback => State::RolledBack,
            _ => return None,
        })
    }

    /// Whether the PE has work left (the new OS takes over from `HandedOff`).
    pub fn pe_side(self) -> bool {
        self < State::HandedOff || self == State::RollingBack
    }

    /// Whether rolling back still gives the old OS back as it was: nothing of the old OS's
    /// partitions has been written before lay-down begins.
    pub fn can_roll_back(self) -> bool {
        self < State::LayingDown || self == State::RollingBack
    }

    /// Whether the store holds a capture that is not yet restored (a new job must never start
    /// over it).
    pub fn holds_unrestored_capture(self) -> bool {
        (State::Capturing..State::Restored).contains(&self)
    }

    pub fn name(self) -> &'static str {
        use State::*;
        match self {
            Planned => "planned",
            Carving => "carving",
            Carved => "carved",
            Capturing => "capturing",
            Captured => "captured",
            Verifying => "verifying",
            Verified => "verified",
            Staging => "staging",
            Staged => "staged",
            LayingDown => "laying-down",
            LaidDown => "laid-down",
            HandingOff => "handing-off",
            HandedOff => "handed-off",
            Restoring => "restoring",
            Restored => "restored",
            CleaningUp => "cleaning-up",
            Done => "done",
            RollingBack => "rolling-back",
            RolledBack => "rolled-back",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [State; 17] = [
        State::Planned,
        State::Carving,
        State::Carved,
        State::Capturing,
        State::Captured,
        State::Staging,
        State::Staged,
        State::LayingDown,
        State::LaidDown,
        State::HandingOff,
        State::HandedOff,
        State::Restoring,
        State::Restored,
        State::CleaningUp,
        State::Done,
        State::RollingBack,
        State::RolledBack,
    ];

    #[test]
    fn every_step_begins_and_ends_in_its_own_states() {
        for s in ALL {
            if let Some(step) = s.next_step() {
                let begun = State::begins(step).unwrap();
                assert!(begun >= s || s == State::Planned || begun == s, "{s} → {step}");
                assert_eq!(begun.next_step(), Some(step), "{s}");
                assert!(State::ends(step).unwrap() > begun || step == Step::Rollback);
            }
        }
    }

    #[test]
    fn rollback_is_offered_only_before_lay_down() {
        assert!(State::Captured.can_roll_back());
        assert!(State::Staged.can_roll_back());
        assert!(!State::LayingDown.can_roll_back());
        assert!(!State::HandedOff.can_roll_back());
    }

    #[test]
    fn an_unrestored_capture_is_protected_from_capture_to_restore() {
        assert!(!State::Carved.holds_unrestored_capture());
        assert!(State::Capturing.holds_unrestored_capture());
        assert!(State::Restoring.holds_unrestored_capture());
        assert!(!State::Restored.holds_unrestored_capture());
        assert!(!State::Done.holds_unrestored_capture());
    }

    #[test]
    fn names_match_serde() {
        for s in ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
    }
}

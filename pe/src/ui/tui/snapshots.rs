//! Snapshots of every screen at 80×25 (a BIOS text console) and 120×40, as text. Reviewed
//! files under `snapshots/`; `docs/tui.md` shows the 80×25 ones.

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use ratatui::Terminal;

use super::app::{App, PlanView, Ready, Screen, Unfinished, UserRow, Users};
use super::job::JobView;
use super::keys::key;
use crate::carve::model::{Layout, Part, Request as CarveRequest, Role as PartRole, Scheme, TailFree};
use crate::error::{Error, Hint, Written};
use crate::inventory::{Disk, Inventory, Partition};
use crate::job::images::{Choice, Origin};
use crate::job::journal::{DiskId, Journal};
use crate::job::plan::{Env, ImagePlan, JobPlan, LeftOut, Planned, Role, SourcePlan};
use crate::job::state::State;
use crate::migrate::estimate::UserTotal;
use crate::migrate::store::CaptureName;
use crate::os::Os;
use crate::preset::{ImageSpec, Preset};
use crate::progress::Event;
use crate::step::Step;
use crate::ui::session::{Context, Ended, Request};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn part(number: u32, start: u64, size: u64, fs: &str, label: &str, part_type: &str) -> Partition {
    Partition {
        number,
        start_bytes: start,
        size_bytes: size,
        part_type: part_type.into(),
        fs: Some(fs.into()),
        label: Some(label.into()),
        ..Partition::default()
    }
}

const ESP: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
const LINUX: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";

/// A laptop disk: ESP, Debian 12 with alice and bob to `root_end`, the rest unallocated.
fn laptop(name: &str, root_end: u64) -> Disk {
    let mut root = part(2, 513 * MIB, root_end - 513 * MIB, "ext4", "root", LINUX);
    root.os = Some(Os { family: "linux".into(), name: "Debian GNU/Linux".into(), version: Some("12 (bookworm)".into()), users: vec!["alice".into(), "bob".into()], ..Os::default() });
    Disk {
        name: name.into(),
        size_bytes: 64 * GIB,
        logical_sector_size: 512,
        physical_sector_size: 512,
        model: Some("Samsung SSD 980 PRO 500GB".into()),
        serial: Some("S5GXNX0T312345K".into()),
        transport: "nvme".into(),
        table: Some("gpt".into()),
        partitions: vec![part(1, MIB, 512 * MIB, "vfat", "ESP", ESP), root],
        ..Disk::default()
    }
}

/// A second disk with data and no OS.
fn data_disk() -> Disk {
    Disk {
        name: "sdb".into(),
        size_bytes: 1000 * GIB,
        logical_sector_size: 512,
        physical_sector_size: 4096,
        model: Some("WDC WD10EZEX-08WN4A0".into()),
        serial: None,
        transport: "sata".into(),
        table: Some("gpt".into()),
        partitions: vec![part(1, MIB, 999 * GIB, "ntfs", "Archive", "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7")],
        ..Disk::default()
    }
}

fn ctx(disks: Vec<Disk>) -> Context {
    let preset = Preset {
        name: "front desk".into(),
        images: vec![
            ImageSpec { name: Some("Debian 12 desktop".into()), source: "images/debian-12.img".into(), sha256: Some("6c".repeat(32)), key: None },
            ImageSpec { name: Some("Lab image (signed)".into()), source: "http://10.0.0.5/images/lab-b.img".into(), sha256: None, key: Some("3b".repeat(32)) },
        ],
        ..Preset::default()
    };
    Context {
        env: Env {
            inventory: Inventory { disks, findings: vec![] },
            dev_dir: Some("/dev".into()),
            excluded: vec![],
            image_roots: vec![],
            agent: "/init".into(),
            agent_windows: None,
            work: "/run/inplace".into(),
            unattended: false,
            http: Default::default(),
            workers: 2,
            efi_nvram: true,
            preset_key: None,
            cut_capture: None,
            reporter: None,
        },
        preset: Some(preset),
        status: "firmware bios · secure-boot off · preset front desk".into(),
        reports: vec!["the stick's INPLACE partition, under reports/".into()],
    }
}

fn app(disks: Vec<Disk>) -> App {
    let mut a = App::new(ctx(disks));
    a.choose.images.push(Choice {
        spec: ImageSpec { name: Some("images/debian-12-kde.inplace".into()), source: "/media/stick/images/debian-12-kde.inplace".into(), sha256: None, key: None },
        origin: Origin::Found,
        file_len: Some(2_874_123_264),
    });
    a
}

fn screen(a: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| super::render(f, a)).unwrap();
    let buf = t.backend().buffer();
    (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

/// Snapshots `a` at both sizes; each line at most its width, nothing cut without an ellipsis
/// (checked for the values known to be long).
fn snap(name: &str, a: &App) {
    for (w, h) in [(80u16, 25u16), (120, 40)] {
        let s = screen(a, w, h);
        assert!(s.lines().all(|l| l.chars().count() <= w as usize));
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), s);
    }
}

fn source(users: &[(&str, u64, u64, u64, u64)], left_out: Vec<LeftOut>, os: &Partition) -> SourcePlan {
    SourcePlan {
        partition: os.clone(),
        role: Role::Os,
        family: "linux".into(),
        capture: CaptureName::FIRST,
        users: users.iter().map(|u| u.0.to_string()).collect(),
        files: users.iter().map(|u| u.1).sum(),
        bytes: users.iter().map(|u| u.2).sum(),
        per_user: users.iter().map(|u| UserTotal { name: u.0.into(), files: u.1, bytes: u.2, left_out: u.3, left_out_bytes: u.4 }).collect(),
        left_out,
    }
}

fn layout(disk: &Disk) -> Layout {
    Layout {
        scheme: Scheme::Gpt,
        sector_size: 512,
        disk_bytes: disk.size_bytes,
        usable_start: 34 * 512,
        usable_end: disk.size_bytes - 33 * 512,
        slots: 128,
        parts: disk
            .partitions
            .iter()
            .map(|p| Part { number: p.number, start: p.start_bytes, size: p.size_bytes, role: PartRole::Primary, ebr: None, fs: p.fs.clone() })
            .collect(),
    }
}

fn left_out() -> Vec<LeftOut> {
    vec![
        LeftOut { why: "excluded by the rule .cache/**".into(), items: 412, bytes: 734 * MIB, examples: vec!["/home/alice/.cache/mozilla".into(), "/home/bob/.cache/pip".into()] },
        LeftOut { why: "over the size cap of 4.0 GiB".into(), items: 1, bytes: 6 * GIB, examples: vec!["/home/alice/Videos/holiday-2025.mkv".into()] },
    ]
}

/// A real carve plan for `disk` (the store after the root, or from its free tail) and the job
/// plan around it.
fn planned(disk: Disk, usage: &[TailFree]) -> Planned {
    let carve = crate::carve::plan::plan(&layout(&disk), usage, &CarveRequest { store_bytes: 14 * GIB, replace: vec![1, 2] }).unwrap();
    let os = disk.partitions[1].clone();
    let root_end = carve.store.start;
    let placement = crate::image::layout::Placement {
        placed: vec![
            crate::image::layout::Placed { image_index: 0, number: 1, start: MIB, size: 512 * MIB, source_size: 512 * MIB },
            crate::image::layout::Placed { image_index: 1, number: 2, start: 513 * MIB, size: root_end - 513 * MIB, source_size: 8 << 30 },
        ],
        kept: vec![],
        removed: vec![],
    };
    let plan = JobPlan {
        preset: Preset { name: "front desk".into(), ..Preset::default() },
        disk_path: "/dev/nvme0n1".into(),
        os: os.clone(),
        sources: vec![source(&[("alice", 18_342, 9_873_412_096, 250, 6 * GIB + 400 * MIB), ("bob", 2_113, 1_234_567_890, 163, 334 * MIB)], left_out(), &os)],
        store_bytes: carve.fs_bytes,
        stage: false,
        carve,
        image: ImagePlan {
            source: "/media/stick/images/debian-12.img".into(),
            digest: "6c".repeat(32),
            pinned_by: "sha256".into(),
            file_len: 1_503_238_553,
            logical_bytes: 4 * GIB,
            remote: false,
        },
        replace: vec![1, 2],
        keep: vec![],
        placement,
        store_after: "delete".into(),
        new_os: "linux".into(),
    };
    let lines = crate::job::plan::describe(&disk, &plan);
    Planned { disk, plan, lines }
}

fn with_plan(p: Planned) -> App {
    let mut a = app(vec![p.disk.clone()]);
    let estimate = crate::job::rates::estimate(&p.plan, 412.0 * MIB as f64);
    a.plan = PlanView::Ready(Box::new(Ready { planned: p, estimate: Some(estimate) }));
    a.screen = Screen::Plan;
    a
}

#[test]
fn home_with_one_disk() {
    snap("home_one_disk", &app(vec![laptop("nvme0n1", 40 * GIB)]));
}

#[test]
fn home_with_two_disks() {
    let mut a = app(vec![laptop("nvme0n1", 40 * GIB), data_disk()]);
    a.home.selected = 1;
    snap("home_two_disks", &a);
}

#[test]
fn home_with_no_disk() {
    snap("home_no_disk", &app(vec![]));
}

#[test]
fn home_with_an_unfinished_job() {
    let mut a = app(vec![laptop("nvme0n1", 40 * GIB)]);
    a.home.unfinished = Some(Unfinished {
        path: "/dev/nvme0n1".into(),
        disk: "nvme0n1".into(),
        job_id: "0123456789abcdef0123456789abcdef".into(),
        name: "front desk".into(),
        state: State::Capturing,
    });
    snap("home_resume_prompt", &a);
}

#[test]
fn choose_with_users() {
    let mut a = app(vec![laptop("nvme0n1", 40 * GIB), data_disk()]);
    a.screen = Screen::Choose;
    a.choose.users = Users::Ready(vec![
        UserRow { name: "alice".into(), partition: 2, files: 18_342, bytes: 9_873_412_096, left_out: (250, 6 * GIB + 400 * MIB), keep: true },
        UserRow { name: "bob".into(), partition: 2, files: 2_113, bytes: 1_234_567_890, left_out: (163, 334 * MIB), keep: false },
    ]);
    a.key(key(KeyCode::Tab));
    a.key(key(KeyCode::Tab));
    a.key(key(KeyCode::Down));
    snap("choose", &a);
}

#[test]
fn plan_in_unallocated_space() {
    let a = with_plan(planned(laptop("nvme0n1", 40 * GIB), &[]));
    assert!(matches!(&a.plan, PlanView::Ready(r) if r.planned.plan.carve.strategy == crate::carve::model::Strategy::Unallocated));
    snap("plan_unallocated", &a);
}

#[test]
fn plan_from_a_free_tail() {
    let disk = laptop("nvme0n1", 64 * GIB - MIB);
    let tail = TailFree { number: 2, fs: "ext4".into(), start: 30 * GIB, end: 64 * GIB - 514 * MIB };
    let a = with_plan(planned(disk, &[tail]));
    assert!(matches!(&a.plan, PlanView::Ready(r) if r.planned.plan.carve.strategy == crate::carve::model::Strategy::FreeTail { number: 2 }));
    snap("plan_free_tail", &a);
}

#[test]
fn plan_refused() {
    let mut a = app(vec![laptop("nvme0n1", 64 * GIB - MIB)]);
    a.screen = Screen::Plan;
    a.plan = PlanView::Refused(
        Error::refused(Step::Plan, "the store does not fit on nvme0n1: it needs 14.0 GiB and the largest free tail (partition 2) has 3.2 GiB")
            .hint(Hint::Advice { text: "the store can be at most 3.2 GiB here: leave data out (Videos, other users)".into() })
            .hint(Hint::ExternalStore),
    );
    snap("plan_refused", &a);
}

#[test]
fn confirm_before_typing_and_after_enter_alone() {
    let mut a = with_plan(planned(laptop("nvme0n1", 40 * GIB), &[]));
    a.screen = Screen::Confirm;
    a.key(key(KeyCode::Enter));
    assert_eq!(a.screen, Screen::Confirm, "Enter alone does not start the job");
    for c in "34".chars() {
        a.key(key(KeyCode::Char(c)));
    }
    a.key(key(KeyCode::Enter));
    assert_eq!((a.screen, a.confirm.refused_enter), (Screen::Confirm, true), "nor does half the serial");
    snap("confirm", &a);
}

fn progress_mid_capture() -> App {
    let mut a = app(vec![laptop("nvme0n1", 40 * GIB)]);
    a.screen = Screen::Progress;
    a.job = JobView::for_request(Some(&Request::Run { preset: Box::default(), disk: "nvme0n1".into() }));
    let events = [
        Event::Step { step: Step::Carve },
        Event::log("carving: shrink partition 2 by 14.1 GiB, add partition 3 (INPLACE)"),
        Event::StepDone { step: Step::Carve, secs: 2.4, bytes: 15 * GIB },
        Event::Step { step: Step::Capture },
        Event::Phase { name: "capturing partition 2 into capture/".into(), total: 11_107_979_986 },
        Event::log("alice: 18342 files"),
        Event::warning("/home/alice/.local/share/Trash: excluded by the rule .local/share/Trash/**"),
        Event::Bytes { done: 4_398_046_511, total: 11_107_979_986, rate: 187.0 * MIB as f64, eta_secs: Some(34.2) },
        Event::Entries { done: 7_412, total: 20_455, current: "/home/alice/Documents/Reports/2026/quarterly-review-final-v3.odt".into() },
    ];
    for e in &events {
        a.job.apply(e);
    }
    a
}

#[test]
fn progress_in_the_middle_of_the_capture() {
    snap("progress_capture", &progress_mid_capture());
}

#[test]
fn progress_asking_before_stopping() {
    let mut a = progress_mid_capture();
    a.key(key(KeyCode::Esc));
    assert!(a.job.asking_stop);
    snap("progress_stop_prompt", &a);
}

#[test]
fn result_with_items_left_out() {
    let p = planned(laptop("nvme0n1", 40 * GIB), &[]);
    let d = &p.disk;
    let mut j = Journal::new(
        "0123456789abcdef0123456789abcdef".into(),
        "front desk".into(),
        DiskId { name: d.name.clone(), size_bytes: d.size_bytes, sector_size: 512, serial: d.serial.clone(), wwn: None, model: d.model.clone() },
        p.plan.clone(),
    );
    for (s, secs) in [(Step::Carve, 2.4), (Step::Capture, 61.0), (Step::Verify, 22.5), (Step::Stage, 0.0), (Step::LayDown, 38.1), (Step::HandOff, 1.2)] {
        j.begin(s, 0);
        j.end(s, 1, secs, 0);
    }
    let mut a = app(vec![p.disk.clone()]);
    a.screen = Screen::Result;
    a.job.ended = Some(Ended::Done { journal: Box::new(j), lines: p.lines });
    snap("result", &a);
}

#[test]
fn an_engine_error_in_the_progress_screen() {
    let mut a = progress_mid_capture();
    let e = Error::io(Step::Capture, "reading /dev/nvme0n1 at byte 21474836480: Input/output error")
        .written(Written::StoreOnly)
        .hint(Hint::RunAgain)
        .hint(Hint::Rollback { disk: "/dev/nvme0n1".into() });
    a.job.apply(&Event::Failed { error: e.clone() });
    a.job.ended = Some(Ended::Failed { error: e });
    snap("progress_error", &a);
}

#[test]
fn the_detail_pane_shows_values_whole() {
    let mut a = app(vec![laptop("nvme0n1", 40 * GIB)]);
    a.key(key(KeyCode::Char('d')));
    assert!(a.detail);
    let s = screen(&a, 80, 25);
    // Wrapped at a word, whole.
    assert!(s.contains("Debian GNU/Linux 12│") && s.contains("│(bookworm), users alice, bob "), "{s}");
    snap("home_detail", &a);
    a.key(key(KeyCode::Esc));
    assert!(!a.detail);
}

#[test]
fn the_confirm_text_is_the_serials_end_or_erase() {
    let disk = laptop("nvme0n1", 40 * GIB);
    assert_eq!(App::token(&disk).0, "345K");
    let no_serial = Disk { serial: None, ..disk.clone() };
    assert_eq!(App::token(&no_serial).0, "ERASE");
    let short = Disk { serial: Some(" 1-2 ".into()), ..disk };
    assert_eq!(App::token(&short).0, "ERASE", "a serial of fewer than 4 letters and digits is no serial to type");
}

#[test]
fn a_typed_url_becomes_the_chosen_image_and_the_preset_keeps_the_chosen_users() {
    let mut a = app(vec![laptop("nvme0n1", 40 * GIB)]);
    a.screen = Screen::Choose;
    a.key(key(KeyCode::Char('u')));
    for k in super::keys::typed("http://10.0.0.5/x.img") {
        a.key(k);
    }
    a.key(key(KeyCode::Enter));
    let c = a.chosen_image().unwrap();
    assert_eq!((c.spec.source.as_str(), c.origin), ("http://10.0.0.5/x.img", Origin::Typed));
    assert_eq!(a.preset().image.unwrap().source, "http://10.0.0.5/x.img");
    a.choose.users = Users::Ready(vec![
        UserRow { name: "alice".into(), partition: 2, files: 1, bytes: 1, left_out: (0, 0), keep: true },
        UserRow { name: "bob".into(), partition: 2, files: 1, bytes: 1, left_out: (0, 0), keep: true },
    ]);
    assert!(a.preset().migrate.users.is_empty(), "all users kept: the preset's choice stands");
    a.key(key(KeyCode::Tab));
    a.key(key(KeyCode::Down));
    a.key(key(KeyCode::Char(' ')));
    assert_eq!(a.preset().migrate.users, ["alice"]);
}

/// Every screen draws at any size, down to one cell, without a panic.
#[test]
fn every_screen_draws_at_any_size() {
    let mut apps = vec![app(vec![]), app(vec![laptop("nvme0n1", 40 * GIB), data_disk()]), progress_mid_capture()];
    apps.push(with_plan(planned(laptop("nvme0n1", 40 * GIB), &[])));
    let mut confirm = with_plan(planned(laptop("nvme0n1", 40 * GIB), &[]));
    confirm.screen = Screen::Confirm;
    apps.push(confirm);
    let mut stop = progress_mid_capture();
    stop.key(key(KeyCode::Esc));
    apps.push(stop);
    for screen in [Screen::Choose, Screen::Result] {
        let mut a = app(vec![laptop("nvme0n1", 40 * GIB)]);
        a.screen = screen;
        a.error = Some(Error::refused(Step::Plan, "a long problem ".repeat(20)));
        apps.push(a);
    }
    for a in &mut apps {
        for detail in [false, true] {
            a.detail = detail;
            for (w, h) in [(1, 1), (2, 3), (10, 4), (20, 8), (40, 12), (79, 24), (200, 60)] {
                screen(a, w, h);
            }
        }
    }
}

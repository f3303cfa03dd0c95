//! `inplace carve`: plan, and with `--yes` make the store partition.

use super::plan::{make_plan, print_plan, Args as PlanArgs};

#[derive(clap::Args)]
#[group(skip)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Write to the disk. Without it nothing is written.
    #[arg(long)]
    pub yes: bool,
    /// A short name for the job, kept in the locator.
    #[arg(long, default_value = "inplace")]
    pub job_name: String,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let (state, result) = make_plan(&args.plan)?;
    print_plan(&args.plan, &state, &result)?;
    let plan = match result {
        Ok(p) => p,
        Err(e) => {
            eprintln!("inplace: {}: {e}\nnothing was written", args.plan.disk.display());
            return Ok(2);
        }
    };
    if !args.yes {
        eprintln!("inplace: nothing was written; run again with --yes to carve the store");
        return Ok(0);
    }
    let out = crate::carve::apply::carve(&args.plan.disk, &plan, &args.job_name, args.plan.repair_gpt)
        .map_err(anyhow::Error::msg)?;
    for r in &out.repairs {
        eprintln!("inplace: {r}");
    }
    eprintln!(
        "inplace: carved store partition {} (job {}); locator at bytes {:?}",
        out.locator.store_number,
        out.locator.job_id_hex(),
        out.locator.copies()
    );
    if let Some(note) = crate::carve::kernel::tell_kernel(&args.plan.disk, &plan).map_err(anyhow::Error::msg)? {
        eprintln!("inplace: {note}");
    }
    Ok(0)
}

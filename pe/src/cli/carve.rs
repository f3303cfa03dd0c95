//! `inplace carve`: plan, and with `--yes` make the store partition.

use super::plan::{make_plan, print_plan, refusal_text, Args as PlanArgs};
use crate::carve::CarveOptions;
use crate::progress::Cancel;

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
            eprintln!("{}", refusal_text(&args.plan.disk, e));
            return Ok(2);
        }
    };
    if !args.yes {
        eprintln!("inplace: nothing was written; run again with --yes to carve the store");
        return Ok(0);
    }
    let opts = CarveOptions { job_name: args.job_name.clone(), job_id: None, repair_gpt: args.plan.repair_gpt };
    let out = crate::carve::carve(&args.plan.disk, &plan, &opts, super::front::printer().as_ref(), &Cancel::new())?;
    eprintln!(
        "inplace: carved store partition {} (job {}); locator at bytes {:?}",
        out.locator.store_number,
        out.locator.job_id_hex(),
        out.locator.copies()
    );
    Ok(0)
}

//! The images, built here from this workspace — nothing is pulled, no
//! registry is asked: the `reference-stack`, `fault-injector` and
//! `faultline` binaries linked statically and stripped (glibc with
//! `+crt-static`, whose built-in DNS and hosts lookups work in an empty
//! image) and copied `FROM scratch`. Images are tagged with the first 12 hex
//! digits of the SHA-256 of binary and Dockerfile, so an unchanged build
//! reuses its image and a changed one gets a new tag.
//!
//! A Docker stack needs the first two ([`ensure`]); the Swarm workers need
//! the third ([`ensure_faultline`]), built only when asked for: the harness
//! is the largest of the three binaries.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

use sha2::{Digest, Sha256};

use super::DockerError;

/// Image name of the reference stack (the binary takes the service name).
pub const REFERENCE_STACK: &str = "faultline/reference-stack";
/// Image name of the standalone fault injector.
pub const FAULT_INJECTOR: &str = "faultline/fault-injector";
/// Image name of faultline itself: the workers of a distributed run
/// (`faultline worker`).
pub const FAULTLINE: &str = "faultline/faultline";
/// The only target this machine's toolchain has; static glibc needs it
/// named so `RUSTFLAGS` skip build scripts and proc macros.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// How one image is made: which package's binary goes into it.
struct Recipe {
    /// Image name, without tag.
    name: &'static str,
    /// The cargo package holding the binary.
    package: &'static str,
    /// The binary, also its path in the image (`/<binary>`).
    binary: &'static str,
}

static REFERENCE_STACK_RECIPE: Recipe = Recipe {
    name: REFERENCE_STACK,
    package: "reference-stack",
    binary: "reference-stack",
};

static FAULT_INJECTOR_RECIPE: Recipe = Recipe {
    name: FAULT_INJECTOR,
    package: "fault-injectors",
    binary: "fault-injector",
};

static FAULTLINE_RECIPE: Recipe = Recipe {
    name: FAULTLINE,
    package: "faultline",
    binary: "faultline",
};

/// The images a Docker stack runs, as `name:tag`.
#[derive(Clone, Debug)]
pub struct Images {
    /// `faultline/reference-stack:<hash>`.
    pub reference_stack: String,
    /// `faultline/fault-injector:<hash>`.
    pub fault_injector: String,
}

/// One image as built or found.
#[derive(Clone, Debug)]
pub struct Built {
    /// `name:tag`.
    pub image: String,
    /// Whether it was built now (false: an image of the same binary existed).
    pub built: bool,
    /// Size in bytes as the engine reports it.
    pub size: u64,
}

/// Builds the stack's binaries (a no-op when unchanged) and any missing
/// stack image.
pub async fn ensure() -> Result<Images, DockerError> {
    let [reference_stack, fault_injector] =
        build([&REFERENCE_STACK_RECIPE, &FAULT_INJECTOR_RECIPE]).await?;
    Ok(Images {
        reference_stack: reference_stack.image,
        fault_injector: fault_injector.image,
    })
}

/// Builds the faultline binary (a no-op when unchanged) and its image if
/// missing: what the Swarm workers run.
pub async fn ensure_faultline() -> Result<Built, DockerError> {
    let [faultline] = build([&FAULTLINE_RECIPE]).await?;
    Ok(faultline)
}

/// Every image, reporting each (for `faultline images build`).
pub async fn build_all() -> Result<[Built; 3], DockerError> {
    build([
        &REFERENCE_STACK_RECIPE,
        &FAULT_INJECTOR_RECIPE,
        &FAULTLINE_RECIPE,
    ])
    .await
}

/// The images of `recipes`, in their order, from one cargo invocation.
async fn build<const N: usize>(recipes: [&'static Recipe; N]) -> Result<[Built; N], DockerError> {
    let built = tokio::task::spawn_blocking(move || build_blocking(&recipes))
        .await
        .map_err(|e| DockerError::Build(e.to_string()))??;
    <[Built; N]>::try_from(built)
        .map_err(|_| DockerError::Build("an image is missing from the build".into()))
}

/// The workspace images are built from: `FAULTLINE_SOURCE`, else the one
/// this faultline was built in.
pub fn workspace() -> PathBuf {
    std::env::var_os("FAULTLINE_SOURCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The process group of the cargo build under way (0: none): cargo and the
/// compilers it starts, which an interrupted faultline must not leave
/// running.
static BUILDING: AtomicI32 = AtomicI32::new(0);

/// Stops the image build under way, if any: cargo and every compiler it
/// started (they share its process group). Called on an interrupt.
pub fn stop_build() {
    let group = BUILDING.swap(0, Ordering::SeqCst);
    if group > 0 {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(group),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

fn build_blocking(recipes: &[&Recipe]) -> Result<Vec<Built>, DockerError> {
    let root = workspace();
    if !root.join("reference-stack/Cargo.toml").is_file() {
        return Err(DockerError::Build(format!(
            "{} is not the faultline workspace; set FAULTLINE_SOURCE to a checkout",
            root.display()
        )));
    }
    let target_dir = root.join("target/images");
    tracing::info!("building static binaries for the images (cargo; minutes the first time)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "--release",
        "--locked",
        "--quiet",
        "--target",
        TARGET,
    ]);
    for recipe in recipes {
        command.args(["-p", recipe.package]);
    }
    let child = command
        .arg("--bins")
        // Stripped: symbols would triple the image for nothing a container needs.
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C strip=symbols",
        )
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(&root)
        // A group of its own, so `stop_build` reaches the compilers too.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DockerError::Build(format!("cannot run cargo: {e}")))?;
    BUILDING.store(
        i32::try_from(child.id()).unwrap_or_default(),
        Ordering::SeqCst,
    );
    let output = child.wait_with_output();
    let stopped = BUILDING.swap(0, Ordering::SeqCst) == 0;
    let output = output.map_err(|e| DockerError::Build(format!("cargo: {e}")))?;
    if stopped {
        return Err(DockerError::Build(
            "the build of the static binaries was stopped by an interrupt".into(),
        ));
    }
    if !output.status.success() {
        return Err(DockerError::Build(format!(
            "cargo build of the static binaries failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let bin = target_dir.join(TARGET).join("release");
    recipes
        .iter()
        .map(|r| image(r.name, &bin.join(r.binary), r.binary, &target_dir))
        .collect()
}

/// The image of `binary`, built unless one of the same hash exists.
fn image(name: &str, binary: &Path, file: &str, work: &Path) -> Result<Built, DockerError> {
    let bytes = std::fs::read(binary)
        .map_err(|e| DockerError::Build(format!("{}: {e}", binary.display())))?;
    let dockerfile = format!(
        "FROM scratch\nCOPY {file} /{file}\nLABEL faultline.image=1\nENTRYPOINT [\"/{file}\"]\n"
    );
    // The recipe is part of the tag: a changed Dockerfile is a new image.
    let hash = Sha256::new()
        .chain_update(&bytes)
        .chain_update(dockerfile.as_bytes())
        .finalize();
    let tag: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let image = format!("{name}:{tag}");
    if let Some(size) = size(&image) {
        return Ok(Built {
            image,
            built: false,
            size,
        });
    }
    let context = work.join("context").join(file);
    // Copied, not written: the copy keeps the binary executable.
    std::fs::create_dir_all(&context)
        .and_then(|()| std::fs::copy(binary, context.join(file)).map(|_| ()))
        .and_then(|()| std::fs::write(context.join("Dockerfile"), &dockerfile))
        .map_err(|e| DockerError::Build(format!("{}: {e}", context.display())))?;
    let output = Command::new("docker")
        .args(["build", "--quiet", "--tag", &image, "--tag"])
        .arg(format!("{name}:latest"))
        .arg(&context)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DockerError::Build(format!("cannot run docker build: {e}")))?;
    if !output.status.success() {
        return Err(DockerError::Build(format!(
            "docker build of {image} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let size = size(&image)
        .ok_or_else(|| DockerError::Build(format!("{image} missing after its build")))?;
    Ok(Built {
        image,
        built: true,
        size,
    })
}

/// The image's size, or None when the engine does not have it.
fn size(image: &str) -> Option<u64> {
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", image])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

//! The panel's window with an OpenGL context (glutin + glutin-winit) and
//! the glow function table. This is the only module that needs `unsafe`:
//! creating a GL context and surface and loading GL functions are unsafe
//! FFI calls in glutin and glow. The fields drop surface and context before
//! the window, or X11 reports GLXBadWindow at exit.

#![allow(unsafe_code)] // see the module comment: GL setup is FFI.

use std::{ffi::CString, num::NonZeroU32, sync::Arc};

use anyhow::{Context as _, anyhow};
use glutin::{
    config::ConfigTemplateBuilder,
    context::{ContextApi, ContextAttributesBuilder, NotCurrentGlContext, PossiblyCurrentContext},
    display::{GetGlDisplay, GlDisplay},
    surface::{GlSurface, Surface, SwapInterval, WindowSurface},
};
use winit::{
    event_loop::ActiveEventLoop,
    raw_window_handle::HasWindowHandle,
    window::{Window, WindowAttributes},
};

/// A window we can draw into with GL.
pub struct GlWindow {
    // Field order is drop order: surface, context, then the window.
    surface: Surface<WindowSurface>,
    context: PossiblyCurrentContext,
    window: Window,
}

impl GlWindow {
    /// Create the window and a current GL context for it, and load GL.
    pub fn new(
        event_loop: &ActiveEventLoop,
        attributes: WindowAttributes,
    ) -> anyhow::Result<(Self, Arc<glow::Context>)> {
        let template = ConfigTemplateBuilder::new()
            .prefer_hardware_accelerated(None)
            .with_depth_size(0)
            .with_stencil_size(0)
            .with_transparency(false);
        // glutin-winit's picker must return a config and cannot report
        // "none"; an empty list (no usable GL at all) panics inside it, and
        // that panic becomes an error here.
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            glutin_winit::DisplayBuilder::new()
                .with_preference(glutin_winit::ApiPreference::FallbackEgl)
                .with_window_attributes(Some(attributes.clone()))
                .build(event_loop, template, |mut configs| {
                    configs.next().expect("no OpenGL configuration")
                })
                .map_err(|err| err.to_string())
        }))
        .map_err(|_| "no OpenGL configuration".to_owned())
        .and_then(|r| r);
        let (window, config) =
            built.map_err(|err| anyhow!("no usable OpenGL configuration: {err}"))?;
        let display = config.display();
        let handle = window
            .as_ref()
            .map(|w| w.window_handle().map(|h| h.as_raw()))
            .transpose()
            .context("window handle")?;
        let attributes_gl = ContextAttributesBuilder::new().build(handle);
        let attributes_gles = ContextAttributesBuilder::new()
            .with_context_api(ContextApi::Gles(None))
            .build(handle);
        // SAFETY: the display and config come from glutin for this window.
        let not_current = unsafe {
            display
                .create_context(&config, &attributes_gl)
                .or_else(|_| display.create_context(&config, &attributes_gles))
        }
        .context("cannot create an OpenGL context")?;
        let window = match window {
            Some(window) => window,
            None => glutin_winit::finalize_window(event_loop, attributes, &config)
                .context("cannot create the window")?,
        };
        let size = window.inner_size();
        let surface_attributes = glutin::surface::SurfaceAttributesBuilder::<WindowSurface>::new()
            .build(
                window.window_handle().context("window handle")?.as_raw(),
                NonZeroU32::new(size.width).unwrap_or(NonZeroU32::MIN),
                NonZeroU32::new(size.height).unwrap_or(NonZeroU32::MIN),
            );
        // SAFETY: the window handle is valid while `window` lives, and the
        // surface is dropped before it (field order).
        let surface = unsafe { display.create_window_surface(&config, &surface_attributes) }
            .context("cannot create the GL surface")?;
        let context = not_current
            .make_current(&surface)
            .context("cannot make the GL context current")?;
        // Vsync when available; not fatal without.
        if let Err(err) = surface.set_swap_interval(&context, SwapInterval::Wait(NonZeroU32::MIN)) {
            tracing::debug!("no vsync: {err}");
        }
        // SAFETY: the context is current on this thread, and the loader
        // returns its function pointers.
        let gl = unsafe {
            glow::Context::from_loader_function(|name| {
                CString::new(name).map_or(std::ptr::null(), |name| display.get_proc_address(&name))
            })
        };
        Ok((
            Self {
                surface,
                context,
                window,
            },
            Arc::new(gl),
        ))
    }

    /// The window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Follow a window resize.
    pub fn resize(&self, width: u32, height: u32) {
        if let (Some(w), Some(h)) = (NonZeroU32::new(width), NonZeroU32::new(height)) {
            self.surface.resize(&self.context, w, h);
        }
    }

    /// Show what was drawn.
    pub fn swap_buffers(&self) -> anyhow::Result<()> {
        self.surface
            .swap_buffers(&self.context)
            .context("swapping GL buffers")
    }
}

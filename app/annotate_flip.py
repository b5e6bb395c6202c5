"""The annotation window's stimulus surface drawn through OpenGL: each phase is drawn into
the back buffer, swapped on the display's refresh (swap interval 1) and its onset taken
when the swap is done (``glFinish`` right after it, as PsychoPy's ``flip`` does).

:func:`choose_surface` decides, before a session opens, how phases reach the screen
(setting ``stimulus.flip``, docs/running-a-session.md#stimulus-onsets):

- ``vsync``: OpenGL with swap control (the driver waits for the refresh); refused with one
  line where it cannot be had;
- ``swap``: OpenGL, the onset at the swap, whether or not the driver waits for the refresh
  (a virtual X server has none: it checks the OpenGL path there);
- ``paint``: the raster path, the onset at the end of the first paint (no swap is seen);
- ``auto``: ``vsync`` where it can be had, else ``paint``.

:class:`StimulusSurface` is the OpenGL window, embedded in the annotation window, which
paints it with the same ``QPainter`` code as the raster path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import (
    QExposeEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QOpenGLContext,
    QPainter,
    QSurface,
    QSurfaceFormat,
    QWindow,
)

from gazelab.annotation.protocol import Phase
from gazelab.errors import GazelabError

if TYPE_CHECKING:
    from gazelab.app.annotate import AnnotationWindow

__all__ = ["FlipUnavailable", "StimulusSurface", "SurfaceChoice", "choose_surface"]

NO_GL_PLATFORMS = frozenset({"offscreen", "minimal", "vnc", "linuxfb"})
"""Qt platforms without a display to swap to: the raster path (tests run offscreen)."""


class FlipUnavailable(GazelabError, RuntimeError):
    """``stimulus.flip`` asks for an OpenGL path this machine cannot give."""


@dataclasses.dataclass(frozen=True)
class SurfaceChoice:
    """How phases reach the screen in this session.

    ``clock``: what an onset's time is, ``flip`` (the swap done) or ``paint`` (the end of
    the first paint); ``vsync``: the driver swaps on the refresh; ``renderer``: the OpenGL
    renderer (empty on the raster path); ``why``: why ``auto`` took the raster path."""

    asked: str
    clock: str
    vsync: bool = False
    renderer: str = ""
    why: str = ""

    def as_event(self) -> dict[str, Any]:
        """The session's ``display_surface`` event."""
        return dataclasses.asdict(self)


def _new_format() -> QSurfaceFormat:
    fmt = QSurfaceFormat()
    fmt.setSwapBehavior(QSurfaceFormat.SwapBehavior.DoubleBuffer)
    fmt.setSwapInterval(1)  # swap on the refresh (where the driver lets the interval be set)
    return fmt


def _glx_swap_control() -> bool | None:
    """Whether the current GLX context's display offers swap control, as Qt asks it
    (``GLX_EXT_swap_control`` or ``GLX_MESA_swap_control`` in ``glXQueryExtensionsString``:
    without one, Qt never sets the interval); ``None`` when the context is not GLX (EGL,
    WGL, CGL: there Qt sets the interval itself)."""
    name = ctypes.util.find_library("GL") or "libGL.so.1"
    try:
        gl = ctypes.CDLL(name)
        gl.glXGetCurrentContext.restype = ctypes.c_void_p
        gl.glXGetCurrentDisplay.restype = ctypes.c_void_p
        gl.glXQueryExtensionsString.restype = ctypes.c_char_p
        gl.glXQueryExtensionsString.argtypes = [ctypes.c_void_p, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    if not gl.glXGetCurrentContext():
        return None
    dpy = gl.glXGetCurrentDisplay()
    if not dpy:
        return None
    screen = QGuiApplication.primaryScreen()
    index = max(0, QGuiApplication.screens().index(screen)) if screen is not None else 0
    found = set((gl.glXQueryExtensionsString(dpy, index) or b"").decode().split())
    return bool(found & {"GLX_EXT_swap_control", "GLX_MESA_swap_control"})


def probe_gl() -> tuple[str, bool, str]:
    """Make an OpenGL context on a hidden window: ``(renderer, vsync, problem)``; renderer
    empty and ``problem`` saying why when none can be made."""
    platform = QGuiApplication.platformName()
    if platform in NO_GL_PLATFORMS:
        return "", False, f"the Qt platform {platform!r} has no display to swap to"
    window = QWindow()
    window.setSurfaceType(QSurface.SurfaceType.OpenGLSurface)
    window.setFormat(_new_format())
    window.resize(16, 16)
    ctx = QOpenGLContext()
    ctx.setFormat(_new_format())
    try:
        window.create()
        if not ctx.create():
            return "", False, "no OpenGL context can be made (driver or libGL missing)"
        if not ctx.makeCurrent(window):
            return "", False, "an OpenGL context was made but cannot draw to a window"
        renderer = str(ctx.functions().glGetString(0x1F01) or "OpenGL")  # GL_RENDERER
        glx = _glx_swap_control()
        vsync = glx if glx is not None else ctx.format().swapInterval() >= 1
        ctx.doneCurrent()
        why = "" if vsync else f"{renderer} offers no swap control (no vsync)"
        return renderer, vsync, why
    finally:
        window.destroy()


def choose_surface(flip: str) -> SurfaceChoice:
    """The surface for setting ``stimulus.flip`` = ``flip`` on this machine (see the module).

    Raises :class:`FlipUnavailable` (one line) when ``vsync`` or ``swap`` is asked and
    cannot be had."""
    if flip == "paint":
        return SurfaceChoice(flip, "paint")
    renderer, vsync, problem = probe_gl()
    if flip == "auto":
        if renderer and vsync:
            return SurfaceChoice(flip, "flip", True, renderer)
        return SurfaceChoice(flip, "paint", why=problem)
    if not renderer or (flip == "vsync" and not vsync):
        other = "'swap' (OpenGL without vsync), " if renderer else ""
        raise FlipUnavailable(
            f"stimulus.flip = {flip!r} cannot be had here: {problem}; set stimulus.flip ="
            f" {other}'paint' or 'auto' in the settings (--config)"
        )
    return SurfaceChoice(flip, "flip", vsync, renderer)


class StimulusSurface(QWindow):
    """The OpenGL window that shows the annotation window's screens (embedded in it with
    ``QWidget.createWindowContainer``); :meth:`render` draws, swaps and takes the onset."""

    def __init__(self, win: AnnotationWindow) -> None:
        super().__init__()
        self.win = win
        self.setSurfaceType(QSurface.SurfaceType.OpenGLSurface)
        self.setFormat(_new_format())
        self.setCursor(Qt.CursorShape.BlankCursor)
        self.setFlag(Qt.WindowType.WindowDoesNotAcceptFocus)  # keys stay the window's
        self.ctx = QOpenGLContext(self)
        self.ctx.setFormat(_new_format())
        if not self.ctx.create():
            raise FlipUnavailable("no OpenGL context can be made for the stimulus surface")
        self._device: object | None = None
        self._size = QSize()
        self._pending = False
        self._ahead: tuple[object, ...] | None = None  # what the frame drawn ahead shows
        self.frames = 0  # frames swapped (tests read it)
        self.drawn_ahead = 0  # of them, drawn before their phase's deadline
        self._draw_s: dict[Phase, float] = {}
        self._pixel: Any = None  # the 1 px framebuffer textures are uploaded with
        self.swap_s: deque[float] = deque(maxlen=4096)  # the last frames' swap + glFinish, s

    def schedule(self) -> None:
        """Render at the next turn of the event loop (coalesced): ``QWidget.update``'s role."""
        if not self._pending:
            self._pending = True
            QTimer.singleShot(0, self.render)

    FIRST_DRAW_S = 0.004
    """How long drawing a phase's frame is taken to take before it has been measured, s."""

    MAX_DRAW_S = 0.02

    def draw_s(self, coming: Phase) -> float:
        """How long drawing ``coming``'s frame takes, s (per phase: an image takes longer
        than a blank; the last one, decaying from the longest, at most MAX_DRAW_S): the
        frame is drawn this long before the phase's deadline."""
        return self._draw_s.get(coming, self.FIRST_DRAW_S)

    def _draw(self, coming: Phase | None = None) -> bool:
        """Draw the window's screen (or the trial's in phase ``coming``) into the back
        buffer; ``False`` when not on the screen."""
        from PySide6.QtOpenGL import QOpenGLPaintDevice

        if not self.isExposed() or not self.ctx.makeCurrent(self):
            return False
        dpr = self.devicePixelRatio()
        size = QSize(round(self.width() * dpr), round(self.height() * dpr))
        if self._device is None or size != self._size:
            device = QOpenGLPaintDevice(size)
            device.setDevicePixelRatio(dpr)
            self._device, self._size = device, size
        p = QPainter(self._device)  # type: ignore[call-overload]
        self.win.paint_screen(p, coming)
        p.end()
        return True

    def draw_ahead(self, coming: Phase, key: tuple[object, ...]) -> None:
        """Draw the frame of the phase about to come and wait until the GPU has drawn it
        (``glFinish``): at the deadline :meth:`render` only swaps it in, if what it shows
        (``key``, :meth:`AnnotationWindow.frame_key`) is still what is due."""
        t0 = time.perf_counter()
        self._ahead = None
        if not self._draw(coming):
            return
        self.ctx.functions().glFinish()
        self._ahead = key
        took = time.perf_counter() - t0
        self._draw_s[coming] = min(self.MAX_DRAW_S, max(took, 0.8 * self.draw_s(coming)))

    def render(self) -> bool:
        """Draw the window's screen (unless the frame drawn ahead is it), swap, wait for the
        swap to be done (``glFinish``) and report the onset with the ``flip`` clock;
        ``False`` when not on the screen."""
        self._pending = False
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead != self.win.frame_key() or not self.ctx.makeCurrent(self):
            if not self._draw():
                return False
        else:
            self.drawn_ahead += 1
        t0 = time.perf_counter()
        self.ctx.swapBuffers(self)
        self.ctx.functions().glFinish()  # returns once the swap is done (with vsync: the refresh)
        self.swap_s.append(time.perf_counter() - t0)
        self.frames += 1
        self.win.shown("flip")
        if self.win.mode == "trials" and self.win.ctl.protocol.phase is Phase.IMAGE:
            # the blank after the image comes with a key press, not at a deadline: its
            # frame is drawn now, and the back buffer keeps it until then
            self.draw_ahead(Phase.BLANK1, self.win.frame_key(Phase.BLANK1))
        return True

    def preload(self, image: QImage) -> None:
        """Upload ``image`` as a texture now (drawn into a 1 px framebuffer of its own: the
        back buffer keeps the frame drawn ahead), so the onset that shows it does not wait
        for the upload (~10 ms for a 800x800 image through Mesa's llvmpipe)."""
        from PySide6.QtOpenGL import QOpenGLFramebufferObject, QOpenGLPaintDevice

        if not self.isExposed() or not self.ctx.makeCurrent(self):
            return
        if self._pixel is None:  # (the device referenced while painting: Qt needs it alive)
            self._pixel = (QOpenGLFramebufferObject(QSize(1, 1)), QOpenGLPaintDevice(QSize(1, 1)))
        fbo, device = self._pixel
        fbo.bind()
        p = QPainter(device)
        p.drawImage(QRectF(0, 0, 1, 1), image)
        p.end()
        fbo.release()
        self.ctx.functions().glFinish()

    # -- what reaches this window goes to the annotation window --------------------------
    def exposeEvent(self, event: QExposeEvent) -> None:
        if self.isExposed():
            self.render()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        self.win.keyPressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self.win.mouseMoveEvent(event)

#include "engine/core/text_raster.hpp"

#include <mutex>

#include <imgui.h>

namespace ts {

namespace {

struct Font {
    ImFontAtlas atlas;
    ImFont* font = nullptr;
    unsigned char* pixels = nullptr; // alpha, atlas-sized
    int width = 0, height = 0;
};

// Built once, never changed after: safe to read from any thread.
const Font& font() {
    static Font* f = [] {
        auto* out = new Font();
        out->font = out->atlas.AddFontDefault();
        out->atlas.GetTexDataAsAlpha8(&out->pixels, &out->width, &out->height);
        return out;
    }();
    return *f;
}

const ImFontGlyph* glyphOf(const Font& f, char c) {
    const unsigned char u = static_cast<unsigned char>(c);
    const ImFontGlyph* g = f.font->FindGlyph(u >= 32 && u < 127 ? ImWchar(u) : ImWchar('?'));
    return g;
}

} // namespace

int textWidth(const std::string& text, int scale) {
    const Font& f = font();
    float w = 0;
    for (char c : text)
        if (const ImFontGlyph* g = glyphOf(f, c)) w += g->AdvanceX;
    return static_cast<int>(w + 0.5f) * scale;
}

void drawText(ImageRgba8& image, int x, int y, const std::string& text, Rgb8 colour, int scale) {
    const Font& f = font();
    float pen = 0;
    for (char c : text) {
        const ImFontGlyph* g = glyphOf(f, c);
        if (!g) continue;
        if (g->Visible) {
            const int u0 = static_cast<int>(g->U0 * f.width + 0.5f), v0 = static_cast<int>(g->V0 * f.height + 0.5f);
            const int gw = static_cast<int>((g->U1 - g->U0) * f.width + 0.5f);
            const int gh = static_cast<int>((g->V1 - g->V0) * f.height + 0.5f);
            const int ox = x + static_cast<int>(pen + g->X0) * scale, oy = y + static_cast<int>(g->Y0) * scale;
            for (int gy = 0; gy < gh * scale; ++gy)
                for (int gx = 0; gx < gw * scale; ++gx) {
                    const int px = ox + gx, py = oy + gy;
                    if (px < 0 || py < 0 || px >= image.width || py >= image.height) continue;
                    const float a = f.pixels[(v0 + gy / scale) * f.width + u0 + gx / scale] / 255.0f;
                    if (a <= 0) continue;
                    std::uint8_t* d = image.at(px, py);
                    d[0] = static_cast<std::uint8_t>(d[0] + (colour.r - d[0]) * a + 0.5f);
                    d[1] = static_cast<std::uint8_t>(d[1] + (colour.g - d[1]) * a + 0.5f);
                    d[2] = static_cast<std::uint8_t>(d[2] + (colour.b - d[2]) * a + 0.5f);
                    d[3] = 255;
                }
        }
        pen += g->AdvanceX;
    }
}

} // namespace ts

// No Vulkan driver: pointing the loader at a driver file that does not exist must give the one-line
// environment error that names the fix, not a crash.
#include <cstdlib>
#include <gtest/gtest.h>

#include "engine/render/context.hpp"

TEST(NoDriver, ContextCreationFailsWithClearMessage) {
    setenv("VK_DRIVER_FILES", "/nonexistent/tensorscape_no_such_icd.json", 1);
    setenv("VK_ICD_FILENAMES", "/nonexistent/tensorscape_no_such_icd.json", 1);
    auto ctx = ts::render::Context::create({.validation = 0});
    ASSERT_FALSE(ctx.hasValue());
    const auto& msg = ctx.error().message;
    EXPECT_NE(msg.find("no Vulkan device"), std::string::npos) << msg;
    EXPECT_NE(msg.find("mesa-vulkan-drivers"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
    EXPECT_EQ(ctx.error().exitCode(), 2);
}
